"""Thin anyio shell around :class:`hsm_sim.processor.HsmProcessor`: one task per connection, answers in
request order. A framing error closes only that connection."""

from __future__ import annotations

import logging
from typing import Final

import anyio
import anyio.abc

from acqkit.netio import FramedConnection, serve_tcp
from acqkit.serving import PLAIN, Serving
from hsm_sim.keys import Lmk
from hsm_sim.processor import HsmProcessor
from wire.trace import TraceWriter

log = logging.getLogger("acqsim.hsm")

#: A client connection that sends nothing for this long is closed.
IDLE_TIMEOUT_S: Final = 300.0
#: An answer the client does not take within this long ends the connection (a stuck reader).
SEND_TIMEOUT_S: Final = 5.0
#: Largest request payload accepted; a longer length prefix closes the connection (M6/M8 messages
#: therefore carry at most about 4000 bytes of data).
MAX_FRAME_LEN: Final = 4096


async def serve(
    host: str,
    port: int,
    *,
    lmk: Lmk,
    trace: TraceWriter | None = None,
    serving: Serving = PLAIN,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled. ``trace`` (optional) records header, command and error code of each message —
    never a field value."""
    processor = HsmProcessor(lmk)
    tracer = trace if trace is not None and trace.enabled else None

    async def handle(conn: FramedConnection) -> None:
        while (payload := await conn.receive(IDLE_TIMEOUT_S)) is not None:
            # Commands are answered in order; all that arrived together are answered in one write.
            requests = [payload, *conn.buffered_frames()]
            answers = [processor.handle(request) for request in requests]
            if tracer is not None:
                for request, answer in zip(requests, answers, strict=True):
                    tracer.record(direction="in", link="hsm", peer=conn.peer, payload=request)
                    tracer.record(direction="out", link="hsm", peer=conn.peer, payload=answer)
            with anyio.fail_after(SEND_TIMEOUT_S):
                await conn.send_many(answers)

    await serve_tcp(
        host,
        port,
        handle,
        name="hsm",
        max_frame_len=MAX_FRAME_LEN,
        max_connections=serving.max_connections,
        tls=serving.server_tls,
        task_status=task_status,
    )
