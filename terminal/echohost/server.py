"""The echo host's I/O shell: ``serve_echo_host`` on the acqkit runtime, and ``acqsim echo-host``.

Each connection is read frame by frame; every request already buffered is answered in the same turn and the
answers leave in one write (``send_many``), so a load generator that pipelines many terminals' requests on a
connection gets them back in one system call.
"""

from __future__ import annotations

import functools
import logging
from typing import Final

import anyio
import anyio.abc

from acqkit.config import AcqsimConfig
from acqkit.netio import FramedConnection, serve_tcp
from terminal.echohost.core import EchoHost
from wire.errors import FramingError

log = logging.getLogger("acqsim.echohost")

#: A connection idle this long is closed (load generators keep theirs busy).
IDLE_TIMEOUT_S: Final = 300.0
#: At most this many connections at once (10,000 idle terminals, and some to spare).
MAX_CONNECTIONS: Final = 20_000


def echo_host_for(config: AcqsimConfig) -> EchoHost:
    """An echo host that knows the configured terminals' TMKs (TEST material)."""
    return EchoHost({t.terminal_id: bytes.fromhex(t.tmk) for t in config.terminals})


async def _serve_connection(host: EchoHost, conn: FramedConnection) -> None:
    try:
        while (payload := await conn.receive(IDLE_TIMEOUT_S)) is not None:
            answers = [a for p in (payload, *conn.buffered_frames()) if (a := host.answer(p)) is not None]
            if answers:
                await conn.send_many(answers)
    except (TimeoutError, FramingError, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
        log.debug("echo host: connection from %s ends: %s", conn.peer, type(exc).__name__)


async def serve_echo_host(
    host: EchoHost,
    listen_host: str,
    port: int,
    *,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled; reports the bound port (bind port 0 in tests)."""
    await serve_tcp(
        listen_host,
        port,
        functools.partial(_serve_connection, host),
        name="echo-host",
        max_connections=MAX_CONNECTIONS,
        task_status=task_status,
    )


__all__ = ["IDLE_TIMEOUT_S", "MAX_CONNECTIONS", "echo_host_for", "serve_echo_host"]
