"""What tests of whole ``acqsim`` processes share: a port nothing listens on, and one CLI run."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import Final

#: A CLI run here is one short-lived process; far above what any of them takes.
RUN_TIMEOUT_S: Final = 60.0
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
