"""The cyclic garbage collector's policy for a serving process: start-up's objects frozen at READY, the young
generation collected seldom where a request's objects die young, and — for a service that keeps what it serves —
what survives the young generations frozen now and then, so full collections never walk it.

Why it matters (docs/benchmarks.md, "session 13"): a collection runs inside whatever allocation triggers it, so no
profile shows it. The services make no reference cycles on their paths (tests/integration/test_no_cyclic_garbage.py):
refcounting frees a request's objects when it ends, and a collection only ever finds what is still in use.
"""

from __future__ import annotations

import gc
from typing import Final

import anyio

#: Net allocations of container objects between two young-generation collections, in a service whose objects
#: die young (a request's state, freed when its answer leaves): CPython's default, 700, made the front-end collect
#: every few purchases, and the survivors it promoted brought full collections of 10–17 ms during traffic. The
#: services leave no cyclic garbage on their paths (tests/integration/test_no_cyclic_garbage.py), so a young
#: collection finds only requests in flight, whatever the threshold.
YOUNG_COLLECTION_EVERY: Final = 10_000


def die_young() -> None:
    """Collect the young generation every :data:`YOUNG_COLLECTION_EVERY` allocations (the other thresholds kept)."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, middle, old)


def freeze_start_up() -> None:
    """Collect start-up's garbage, then move every object left (modules, functions, config, state loaded from
    disk) to the collector's permanent generation: a full collection during traffic scans only what came after.
    Without it a full collection of a service at rest walks ~50,000 start-up objects: a 8–17 ms pause at random
    in the middle of traffic (measured in the front-end), a tail that shows in every purchase in flight."""
    gc.collect()
    gc.freeze()


#: How often a service that keeps what it serves sets aside what survived (:func:`freeze_survivors`).
FREEZE_SURVIVORS_EVERY_S: Final = 5.0


def freeze_what_survived() -> None:
    """Collect the young and middle generations (cycles made since the last call), then move every object left to
    the permanent generation. A frozen object is still freed by refcounting when dropped; only a cycle that becomes
    garbage after it was frozen would stay (the services make none on their paths:
    tests/integration/test_no_cyclic_garbage.py)."""
    gc.collect(1)
    gc.freeze()


async def freeze_survivors(every: float = FREEZE_SURVIVORS_EVERY_S) -> None:
    """:func:`freeze_what_survived` every ``every`` seconds, until cancelled: for a service that keeps what it
    serves (the ledger's 100,000 recent transactions, ~700,000 objects), whose full collections would otherwise
    walk all of it again each time a quarter more had come: seven in a 60 s run at capacity, the longest 300 ms,
    with every request in flight waiting (docs/benchmarks.md, "session 13")."""
    while True:
        await anyio.sleep(every)
        freeze_what_survived()
