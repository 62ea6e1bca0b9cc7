"""Plain length-prefixed relays and an echo, for the end-to-end floor: ``python -m bench.relay``.

python -m bench.relay --listen PORT --to HOST:PORT    forward each frame, return its answer
python -m bench.relay --listen PORT --echo            answer each frame with itself

Like the NAC and the front-end, a relay carries every client's frames on ONE upstream connection, opened at
start: answers come back in the order the frames went up (the echo and the relays answer in order), so each is
handed to the client first in line. No decoding, routing, checks or crypto: the cost of the hops alone.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
from collections import deque
from typing import Final

import anyio

from acqkit.netio import ConnectionHandler, FramedConnection, connect, serve_tcp
from acqkit.runner import announce, run_service

IDLE_S: Final = 60.0


async def _echo(conn: FramedConnection) -> None:
    while (payload := await conn.receive(IDLE_S)) is not None:
        await conn.send(payload)


class _SharedUpstream:
    def __init__(self, conn: FramedConnection) -> None:
        self.conn = conn
        self.waiting: deque[FramedConnection] = deque()

    async def handle(self, client: FramedConnection) -> None:
        while (payload := await client.receive(IDLE_S)) is not None:
            self.waiting.append(client)
            await self.conn.send(payload)

    async def return_answers(self) -> None:
        while (answer := await self.conn.receive()) is not None:
            client = self.waiting.popleft()
            with contextlib.suppress(OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
                await client.send(answer)  # a client that left has lost only its own answer


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", type=int, required=True)
    parser.add_argument("--to")
    parser.add_argument("--echo", action="store_true")
    args = parser.parse_args()

    async def run() -> None:
        async with anyio.create_task_group() as tg:
            handler: ConnectionHandler = _echo
            if not args.echo:
                host, _, port = args.to.rpartition(":")
                upstream = _SharedUpstream(await connect(host, int(port), timeout=5))
                tg.start_soon(upstream.return_answers)
                handler = upstream.handle
            bound = await tg.start(functools.partial(serve_tcp, "127.0.0.1", args.listen, handler, name="relay"))
            announce("relay", "127.0.0.1", bound)

    return run_service(run)


if __name__ == "__main__":
    raise SystemExit(main())
