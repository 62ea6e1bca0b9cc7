"""What tests of whole ``acqsim`` processes share: a port nothing listens on, one CLI run, and the port a
serving process announces."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import Final

import anyio
import anyio.abc

#: A CLI run here is one short-lived process; far above what any of them takes.
RUN_TIMEOUT_S: Final = 60.0
#: Longest a serving process may take to announce itself (a loaded CI machine starts Python slowly).
STARTUP_S: Final = 60.0
LOOPBACK: Final = "127.0.0.1"


def closed_port() -> int:
    """A loopback port nothing listens on: bound, read back and closed (connecting to it is refused)."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
    return port


def run_acqsim(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``acqsim ARGV…`` as its own process in ``cwd``, to its end; stdout and stderr captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "acqsim", *argv],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        cwd=cwd,
        check=False,
    )


async def announced_port(stdout: anyio.abc.ByteReceiveStream, service: str) -> int:
    """Read a serving process's output up to the end of its ``READY <service> 127.0.0.1:<port>`` line (a port
    read before its line ended could be cut short): the port. Fails after :data:`STARTUP_S`."""
    marker = f"READY {service} {LOOPBACK}:".encode()
    seen = b""
    with anyio.fail_after(STARTUP_S):
        while marker not in seen or b"\n" not in seen.split(marker, 1)[1]:
            seen += await stdout.receive()
    return int(seen.split(marker, 1)[1].split(b"\n", 1)[0])
