"""Serving a link whose frames are answered at once, in order, by plain code: a device (the MPOS reader) or a
canned host (the echo host).

Each connection is read frame by frame; every frame already buffered is answered in the same turn and the
answers leave in one write (``send_many``), so a peer that pipelines requests on a connection gets them back in
one system call. ``answer`` returns ``None`` for a frame that gets no answer, and must not raise for bad input.
A frame the link cannot cut (a length over ``max_frame_len``) ends that connection only: the stream is out of
step; so does a connection idle for ``idle_timeout`` seconds.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

import anyio
import anyio.abc

from acqkit.netio import FramedConnection, serve_tcp
from wire.errors import FramingError
from wire.framing import DEFAULT_MAX_FRAME_LEN

#: What a connection's end may be: the peer gone, idle too long, or out of step.
CONNECTION_ENDS = (TimeoutError, FramingError, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)

Answer = Callable[[bytes], bytes | None]


async def _answer_in_order(
    answer: Answer, idle_timeout: float, log: logging.Logger, end_level: int, conn: FramedConnection
) -> None:
    try:
        while (payload := await conn.receive(idle_timeout)) is not None:
            answers = [out for each in (payload, *conn.buffered_frames()) if (out := answer(each)) is not None]
            if answers:
                await conn.send_many(answers)
    except CONNECTION_ENDS as exc:
        log.log(end_level, "link from %s ends: %s", conn.peer, type(exc).__name__)


async def serve_in_order(
    listen_host: str,
    port: int,
    answer: Answer,
    *,
    name: str,
    idle_timeout: float,
    max_connections: int,
    log: logging.Logger,
    end_level: int = logging.DEBUG,
    max_frame_len: int = DEFAULT_MAX_FRAME_LEN,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled; reports the bound port (bind port 0 in tests). Each connection's end is logged on
    ``log`` at ``end_level``."""
    await serve_tcp(
        listen_host,
        port,
        functools.partial(_answer_in_order, answer, idle_timeout, log, end_level),
        name=name,
        max_frame_len=max_frame_len,
        max_connections=max_connections,
        task_status=task_status,
    )
