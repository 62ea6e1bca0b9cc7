"""The echo host's I/O shell: ``serve_echo_host`` on the acqkit runtime, and ``acqsim echo-host``.

Each connection is read frame by frame; every request already buffered is answered in the same turn and the
answers leave in one write (:mod:`acqkit.inorder`), so a load generator that pipelines many terminals' requests
on a connection gets them back in one system call.
"""

from __future__ import annotations

import logging
from typing import Final

import anyio
import anyio.abc

from acqkit.config import AcqsimConfig
from acqkit.inorder import serve_in_order
from terminal.echohost.core import EchoHost

log = logging.getLogger("acqsim.echohost")

#: A connection idle this long is closed (load generators keep theirs busy).
IDLE_TIMEOUT_S: Final = 300.0
#: At most this many connections at once (10,000 idle terminals, and some to spare).
MAX_CONNECTIONS: Final = 20_000


def echo_host_for(config: AcqsimConfig) -> EchoHost:
    """An echo host that knows the configured terminals' TMKs (TEST material)."""
    return EchoHost({t.terminal_id: bytes.fromhex(t.tmk) for t in config.terminals})


async def serve_echo_host(
    host: EchoHost,
    listen_host: str,
    port: int,
    *,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled; reports the bound port (bind port 0 in tests)."""
    await serve_in_order(
        listen_host,
        port,
        host.answer,
        name="echo-host",
        idle_timeout=IDLE_TIMEOUT_S,
        max_connections=MAX_CONNECTIONS,
        log=log,
        task_status=task_status,
    )


__all__ = ["IDLE_TIMEOUT_S", "MAX_CONNECTIONS", "echo_host_for", "serve_echo_host"]
