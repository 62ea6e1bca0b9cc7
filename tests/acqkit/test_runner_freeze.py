"""A service's READY line sets start-up's objects aside from the cyclic collector (``acqkit.runner.announce``):
full collections during traffic then scan only what came after, not every module and function of start-up."""

from __future__ import annotations

import subprocess
import sys

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
print(before, gc.get_freeze_count(), gone() is None)
"""


def test_announce_collects_then_freezes_what_start_up_left() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True)
    ready, counts = done.stdout.splitlines()
    assert ready == "READY probe 127.0.0.1:1"
    before, frozen, collected = counts.split()
    assert int(before) == 0
    assert int(frozen) > 10_000  # start-up's objects now sit in the permanent generation
    assert collected == "True"  # start-up's garbage was collected first, not frozen with the rest
