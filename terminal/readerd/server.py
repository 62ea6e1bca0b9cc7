"""The reader service's I/O shell on the acqkit runtime: ``serve_reader`` (``acqsim reader serve``).

Each connection is read frame by frame and each request answered in turn (:mod:`acqkit.inorder`). A frame the
link cannot read (a length over :data:`wire.readerlink.MAX_FRAME_LEN`) ends that connection only: the stream is
out of step.
"""

from __future__ import annotations

import logging
from typing import Final

import anyio
import anyio.abc

from acqkit.inorder import serve_in_order
from terminal.readerd.core import ReaderDevice
from wire.readerlink import MAX_FRAME_LEN

log = logging.getLogger("acqsim.reader")

#: A phone link idle this long is closed (the phone connects again for its next transaction).
IDLE_TIMEOUT_S: Final = 300.0
#: One reader pairs with few phones.
MAX_CONNECTIONS: Final = 8


async def serve_reader(
    device: ReaderDevice,
    listen_host: str,
    port: int,
    *,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled; reports the bound port (bind port 0 in tests)."""
    await serve_in_order(
        listen_host,
        port,
        device.answer,
        name="reader",
        idle_timeout=IDLE_TIMEOUT_S,
        max_connections=MAX_CONNECTIONS,
        log=log,
        end_level=logging.INFO,
        max_frame_len=MAX_FRAME_LEN,
        task_status=task_status,
    )
