"""Plain length-prefixed relays and an echo, for the end-to-end floor: ``python -m bench.relay``.

python -m bench.relay --listen PORT --to HOST:PORT    forward each frame, return its answer
python -m bench.relay --listen PORT --echo            answer each frame with itself
"""

from __future__ import annotations

import argparse
import functools

import anyio

from acqsim.netio import FramedConnection, connect, relay_frames, serve_tcp
from acqsim.runner import announce, run_service


async def _echo(conn: FramedConnection) -> None:
    while (payload := await conn.receive(60)) is not None:
        await conn.send(payload)


async def _relay(host: str, port: int, conn: FramedConnection) -> None:
    upstream = await connect(host, port, timeout=5)
    try:
        await relay_frames(conn, upstream, idle_timeout=60)
    finally:
        await upstream.aclose()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", type=int, required=True)
    parser.add_argument("--to")
    parser.add_argument("--echo", action="store_true")
    args = parser.parse_args()
    if args.echo:
        handler = _echo
    else:
        host, _, port = args.to.rpartition(":")
        handler = functools.partial(_relay, host, int(port))

    async def run() -> None:
        async with anyio.create_task_group() as tg:
            bound = await tg.start(functools.partial(serve_tcp, "127.0.0.1", args.listen, handler, name="relay"))
            announce("relay", "127.0.0.1", bound)

    return run_service(run)


if __name__ == "__main__":
    raise SystemExit(main())
