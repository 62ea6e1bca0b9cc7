"""The cyclic collector's pauses, process by process: put this folder first on ``PYTHONPATH`` for a benchmark
run (services inherit it) and each Python process writes, when it exits, how many collections of each generation
it made, their total and their longest pause, to ``$ACQSIM_GC_PROBE_DIR/gc-<pid>.txt`` (default: the system's
temporary folder), e.g.::

    PYTHONPATH=bench/gcprobe .venv/bin/python -m bench.bench_e2e --keep-alive-only --seconds 15

With ``ACQSIM_GC_GARBAGE_AT=S`` each process also names its cyclic garbage: ``S`` seconds after it started it
collects, then keeps (``gc.DEBUG_SAVEALL``) what the next ``GARBAGE_WINDOW_S`` make unreachable, and writes the
count by type to ``garbage-<pid>.txt`` beside the pause report. A service's requests should leave none (what
refcounting frees costs nothing more; what only the collector frees costs its passes):

    ACQSIM_GC_GARBAGE_AT=14 PYTHONPATH=bench/gcprobe .venv/bin/python -m bench.bench_e2e --keep-alive-only --seconds 20

A measuring aid, never imported by acqsim itself (docs/benchmarks.md, "Garbage-collector pauses" and
"session 13")."""

from __future__ import annotations

import atexit
import collections
import contextlib
import gc
import os
import sys
import tempfile
import threading
import time
from typing import Any

#: How long the garbage census keeps what becomes unreachable (``ACQSIM_GC_GARBAGE_AT``).
GARBAGE_WINDOW_S = 1.0

_started: dict[int, float] = {}
#: generation → [collections, total seconds, longest seconds]
_pauses: dict[int, list[float]] = {generation: [0, 0.0, 0.0] for generation in range(3)}


def _observe(phase: str, info: dict[str, Any]) -> None:
    generation = info["generation"]
    now = time.perf_counter()
    if phase == "start":
        _started[generation] = now
        return
    took = now - _started.pop(generation, now)
    seen = _pauses[generation]
    seen[0] += 1
    seen[1] += took
    seen[2] = max(seen[2], took)


def _write() -> None:
    with open(os.path.join(_folder(), f"gc-{os.getpid()}.txt"), "w", encoding="utf-8") as out:
        out.write(" ".join(sys.argv[:4]) + "\n")
        for generation, (count, total, longest) in _pauses.items():
            pause = f"{total * 1e3:.1f} ms, longest {longest * 1e3:.2f} ms"
            out.write(f"gen{generation} {count:.0f} collections, {pause}\n")
        out.write(f"tracked objects at exit {len(gc.get_objects())}, frozen {gc.get_freeze_count()}\n")


def _folder() -> str:
    return os.environ.get("ACQSIM_GC_PROBE_DIR", tempfile.gettempdir())


def _type_name(thing: object) -> str:
    kind = type(thing)
    name = f"{kind.__module__}.{kind.__qualname__}"
    if kind.__name__ in ("function", "method"):
        name += f" {getattr(thing, '__qualname__', '?')}"
    elif kind.__name__ == "cell":
        with contextlib.suppress(ValueError):  # an empty cell has no contents
            name += f" -> {type(thing.cell_contents).__qualname__}"  # type: ignore[attr-defined]
    return name


def _garbage_census(after: float) -> None:
    time.sleep(after)
    gc.collect()  # what was garbage before the window is not counted
    gc.set_debug(gc.DEBUG_SAVEALL)
    time.sleep(GARBAGE_WINDOW_S)
    gc.collect()
    gc.set_debug(0)
    found, gc.garbage[:] = list(gc.garbage), []
    counts = collections.Counter(_type_name(thing) for thing in found)
    with open(os.path.join(_folder(), f"garbage-{os.getpid()}.txt"), "w", encoding="utf-8") as out:
        out.write(" ".join(sys.argv[:4]) + "\n")
        out.write(f"{len(found)} objects only the cyclic collector would free, in {GARBAGE_WINDOW_S:g} s\n")
        for name, count in counts.most_common(40):
            out.write(f"{count:8d} {name}\n")


gc.callbacks.append(_observe)
atexit.register(_write)
if os.environ.get("ACQSIM_GC_GARBAGE_AT"):
    threading.Thread(
        target=_garbage_census, args=(float(os.environ["ACQSIM_GC_GARBAGE_AT"]),), name="gc-census", daemon=True
    ).start()
