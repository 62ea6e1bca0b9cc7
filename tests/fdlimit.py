"""Running a process out of file descriptors on purpose, for the tests of what a server does then."""

from __future__ import annotations

import contextlib
import os
import resource
from collections.abc import Iterator


@contextlib.contextmanager
def one_descriptor_left() -> Iterator[None]:
    """Inside: the process may open one more descriptor (the test's own socket takes it, so a server's next
    ``accept`` fails with EMFILE); the limit is restored on the way out. A new descriptor is the lowest free
    number, and the soft limit caps the number, so the limit is set just above the next free one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    first_free, second_free = os.open(os.devnull, os.O_RDONLY), os.open(os.devnull, os.O_RDONLY)
    os.close(first_free)
    os.close(second_free)
    resource.setrlimit(resource.RLIMIT_NOFILE, (second_free, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
