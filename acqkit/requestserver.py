"""Serving a request/answer link where each frame is answered on its own: one task per request.

A connection's requests are read as they come and each is answered in its own task (at most
``max_in_flight`` at once per connection; the reader waits for a free slot before reading on), so a slow
answer (an issuer leg, a commit) never holds up the requests behind it; answers go back as they are ready, and
the peer matches them to its requests by their content (MTI class, 32, 37 on the host and switch links).
``answer(frame, peer)`` must not raise for bad input; a connection that can no longer be written ends quietly.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Final

import anyio
import anyio.abc

from acqkit.netio import FramedConnection, acquire_slot, serve_tcp
from acqkit.serving import PLAIN, Serving

log = logging.getLogger("acqsim.net")

IDLE_TIMEOUT_S: Final = 600.0
SEND_TIMEOUT_S: Final = 10.0
MAX_IN_FLIGHT_PER_CONNECTION: Final = 256

Answerer = Callable[[bytes, str], Awaitable[bytes]]


async def serve_requests(
    host: str,
    port: int,
    answer: Answerer,
    *,
    name: str,
    serving: Serving = PLAIN,
    max_in_flight: int = MAX_IN_FLIGHT_PER_CONNECTION,
    idle_timeout: float = IDLE_TIMEOUT_S,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled; ``task_status.started(port)`` gives the bound port."""

    async def respond(conn: FramedConnection, frame: bytes, slot: anyio.Semaphore) -> None:
        try:
            out = await answer(frame, conn.peer)
            with anyio.fail_after(SEND_TIMEOUT_S):
                await conn.send(out)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, TimeoutError):
            log.info("%s: could not answer %s, the connection is gone", name, conn.peer)
        finally:
            slot.release()

    async def handle(conn: FramedConnection) -> None:
        slot = anyio.Semaphore(max_in_flight)
        async with anyio.create_task_group() as requests:
            while True:
                await acquire_slot(slot)
                frame = await conn.receive(idle_timeout)
                if frame is None:
                    slot.release()
                    return
                requests.start_soon(respond, conn, frame, slot)

    async with anyio.create_task_group() as tg:
        listening = functools.partial(
            serve_tcp, host, port, handle, name=name, max_connections=serving.max_connections, tls=serving.server_tls
        )
        task_status.started(await tg.start(listening))
