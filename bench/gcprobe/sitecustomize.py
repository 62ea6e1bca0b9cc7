"""The cyclic collector's pauses, process by process: put this folder first on ``PYTHONPATH`` for a benchmark
run (services inherit it) and each Python process writes, when it exits, how many collections of each generation
it made, their total and their longest pause, to ``$ACQSIM_GC_PROBE_DIR/gc-<pid>.txt`` (default: the system's
temporary folder), e.g.::

    PYTHONPATH=bench/gcprobe .venv/bin/python -m bench.bench_e2e --keep-alive-only --seconds 15

A measuring aid, never imported by acqsim itself (docs/benchmarks.md, "Garbage-collector pauses")."""

from __future__ import annotations

import atexit
import gc
import os
import sys
import tempfile
import time
from typing import Any

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
    folder = os.environ.get("ACQSIM_GC_PROBE_DIR", tempfile.gettempdir())
    with open(os.path.join(folder, f"gc-{os.getpid()}.txt"), "w", encoding="utf-8") as out:
        out.write(" ".join(sys.argv[:4]) + "\n")
        for generation, (count, total, longest) in _pauses.items():
            pause = f"{total * 1e3:.1f} ms, longest {longest * 1e3:.2f} ms"
            out.write(f"gen{generation} {count:.0f} collections, {pause}\n")
        out.write(f"tracked objects at exit {len(gc.get_objects())}, frozen {gc.get_freeze_count()}\n")


gc.callbacks.append(_observe)
atexit.register(_write)
