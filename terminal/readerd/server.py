"""The reader service's I/O shell on the acqkit runtime: ``serve_reader`` (``acqsim reader serve``).

Each connection is read frame by frame and each request answered in turn. A frame the link cannot read (a
length over :data:`wire.readerlink.MAX_FRAME_LEN`) ends that connection only: the stream is out of step.
"""

from __future__ import annotations

import functools
import logging
from typing import Final

import anyio
import anyio.abc

from acqkit.netio import FramedConnection, serve_tcp
from terminal.readerd.core import ReaderDevice
from wire.errors import FramingError
from wire.readerlink import MAX_FRAME_LEN

log = logging.getLogger("acqsim.reader")

#: A phone link idle this long is closed (the phone connects again for its next transaction).
IDLE_TIMEOUT_S: Final = 300.0
#: One reader pairs with few phones.
MAX_CONNECTIONS: Final = 8


async def _serve_connection(device: ReaderDevice, conn: FramedConnection) -> None:
    try:
        while (payload := await conn.receive(IDLE_TIMEOUT_S)) is not None:
            await conn.send(device.answer(payload))
    except (TimeoutError, FramingError, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
        log.info("reader: link from %s ends: %s", conn.peer, type(exc).__name__)


async def serve_reader(
    device: ReaderDevice,
    listen_host: str,
    port: int,
    *,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled; reports the bound port (bind port 0 in tests)."""
    await serve_tcp(
        listen_host,
        port,
        functools.partial(_serve_connection, device),
        name="reader",
        max_frame_len=MAX_FRAME_LEN,
        max_connections=MAX_CONNECTIONS,
        task_status=task_status,
    )
