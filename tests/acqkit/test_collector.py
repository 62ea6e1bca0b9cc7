"""The cyclic collector's policy (``acqkit.collector``): a service's READY line (``acqkit.runner.announce``) sets
start-up's objects aside, so full collections during traffic scan only what came after, and raises the young
threshold where objects die young; a service that keeps what it serves freezes what survives."""

from __future__ import annotations

import subprocess
import sys

from acqkit.collector import YOUNG_COLLECTION_EVERY

PROBE = """
import gc
import weakref
from acqkit.runner import announce
import frontend.server  # a service's start-up: tens of thousands of objects
class Node:
    pass
garbage = Node()
garbage.itself = garbage  # a cycle start-up left for the collector
gone = weakref.ref(garbage)
del garbage
gc.disable()  # no collection but the one announce makes
before = gc.get_freeze_count()
announce("probe", "127.0.0.1", 1)
print(before, gc.get_freeze_count(), gone() is None, gc.get_threshold()[0])
"""

KEEPER = """
import gc
from acqkit.runner import announce
default = gc.get_threshold()[0]
announce("ledger", "127.0.0.1", 1, objects_die_young=False)
print(default, gc.get_threshold()[0])
"""


def test_announce_collects_then_freezes_what_start_up_left() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True)
    ready, counts = done.stdout.splitlines()
    assert ready == "READY probe 127.0.0.1:1"
    before, frozen, collected, young_threshold = counts.split()
    assert int(before) == 0
    assert int(frozen) > 10_000  # start-up's objects now sit in the permanent generation
    assert collected == "True"  # start-up's garbage was collected first, not frozen with the rest
    assert int(young_threshold) == YOUNG_COLLECTION_EVERY  # a service whose objects die young collects seldom


def test_a_service_that_keeps_what_it_serves_keeps_the_default_young_threshold() -> None:
    done = subprocess.run([sys.executable, "-c", KEEPER], capture_output=True, text=True, timeout=60, check=True)
    default, kept = done.stdout.splitlines()[1].split()
    assert kept == default  # CPython's own: each pass over the ledger's kept transactions stays short


SURVIVORS = """
import gc
import weakref
from acqkit.collector import freeze_what_survived
class Node:
    pass
kept = [Node() for _ in range(50_000)]  # what a ledger keeps: plain data, no cycles
cycle = Node()
cycle.itself = cycle  # young garbage a pass must still find
gone = weakref.ref(cycle)
del cycle
gc.disable()
before = gc.get_freeze_count()
freeze_what_survived()
frozen = gc.get_freeze_count() - before
dropped = weakref.ref(kept[0])
del kept  # a frozen object is still freed by refcounting when it is dropped
print(gone() is None, frozen, dropped() is None, gc.get_freeze_count() - before)
"""


def test_what_survives_the_young_generations_is_frozen_and_still_freed_when_dropped() -> None:
    """The ledger's :func:`acqkit.collector.freeze_survivors`: young cycles are collected first, what survives goes
    to the permanent generation (full collections no longer walk it), and dropping it frees it as before."""
    done = subprocess.run([sys.executable, "-c", SURVIVORS], capture_output=True, text=True, timeout=60, check=True)
    collected, frozen, freed, left = done.stdout.split()
    assert collected == "True"
    assert int(frozen) >= 50_000
    assert freed == "True"
    assert int(left) < int(frozen) - 49_000  # the dropped ones left the permanent generation too
