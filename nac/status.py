"""The NAC's status port: every connection gets the statistics as one JSON document, then the end.

What a status client sends is never read, so no input can upset the port; ``fetch_stats`` is the client side
(``acqsim nac --stats HOST:PORT``).
"""

from __future__ import annotations

import json
import logging
from typing import Final

import anyio

from acqkit.netio import FramedConnection
from nac.stats import NacStats

log = logging.getLogger("acqsim.nac")

#: Status connections served at once.
MAX_STATUS_CONNECTIONS: Final = 16
#: A status client gets its JSON document within this time or is dropped.
STATUS_SEND_TIMEOUT_S: Final = 2.0


async def answer_status(stats: NacStats, conn: FramedConnection) -> None:
    """Write ``stats`` as one JSON document (not a frame); serve_tcp closes the connection after."""
    document = json.dumps(stats.snapshot(), sort_keys=True).encode() + b"\n"
    try:
        with anyio.fail_after(STATUS_SEND_TIMEOUT_S):
            await conn.stream.send(document)
    except (TimeoutError, OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
        log.info("status client %s went away", conn.peer)


async def fetch_stats(host: str, port: int, *, timeout: float = STATUS_SEND_TIMEOUT_S) -> dict[str, object]:
    """Read the JSON statistics document of a running NAC's status port."""
    chunks: list[bytes] = []
    with anyio.fail_after(timeout):
        async with await anyio.connect_tcp(host, port) as stream:
            while True:
                try:
                    chunks.append(await stream.receive())
                except anyio.EndOfStream:
                    break
    document: dict[str, object] = json.loads(b"".join(chunks))
    return document
