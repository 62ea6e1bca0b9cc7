"""The cyclic garbage collector switched off for a block (after one pass clears what came before): whatever is
freed inside it was freed by refcounting, so a test can tell that its objects left no cycle behind."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def collector_off() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
