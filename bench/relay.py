"""Plain length-prefixed relays and an echo, for the end-to-end floor: ``python -m bench.relay``.

python -m bench.relay --listen PORT --to HOST:PORT    forward each frame, return its answer
python -m bench.relay --listen PORT --echo            answer each frame with itself
python -m bench.relay --listen PORT --via HOST:PORT [--via HOST:PORT ...]
                                                     exchange each frame with each upstream in turn
                                                     (the front-end's shape: HSM, ledger, HSM), then answer
python -m bench.relay --callbacks ...                 the same relay, echo or exchanges as asyncio protocol callbacks

Like the NAC and the front-end, a relay carries every client's frames on ONE upstream connection, opened at
start: answers come back in the order the frames went up (the echo and the relays answer in order), so each is
handed to the client first in line. No decoding, routing, checks or crypto: the cost of the hops alone.
With ``--via``, each frame gets a task of its own (as in the front-end, whose transactions wait on peers) that
sends it to each upstream in turn, waits for that upstream's answer, and answers the client with the last one.
With ``--callbacks`` (asyncio only) the relay or echo runs as protocol callbacks with no task per connection or
frame: the frames a read brings are cut, forwarded or echoed, and written in one write, inside the read's
callback: the runtime's callback path (``acqkit.frameprotocol``, which every service runs on under asyncio without
TLS), measured on the same hops (docs/benchmarks.md); with ``--via`` each answer from one upstream is sent on to the
next in that answer's own callback, with no task. Frames sent to a connection outside its own read (a relay's
upstream, its clients' answers) leave in one write per connection at the end of the loop turn.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
from collections import deque
from collections.abc import Callable
from typing import Final, TypeVar

import anyio

from acqkit.frameprotocol import FrameConnection, serve_frames
from acqkit.frameprotocol import connect as connect_frames
from acqkit.netio import ConnectionHandler, FramedConnection, connect, serve_tcp
from acqkit.runner import announce, run_service

IDLE_S: Final = 60.0
#: A callback-path session of this module.
S = TypeVar("S", bound="_EchoSession")


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


class _ExchangeUpstream:
    """One shared upstream connection answering in order: each exchange waits for the answer first in line."""

    def __init__(self, conn: FramedConnection) -> None:
        self.conn = conn
        self.waiting: deque[tuple[anyio.Event, list[bytes]]] = deque()

    async def exchange(self, payload: bytes) -> bytes:
        answered, box = anyio.Event(), list[bytes]()
        self.waiting.append((answered, box))
        await self.conn.send(payload)
        with anyio.fail_after(IDLE_S):
            await answered.wait()
        return box[0]

    async def return_answers(self) -> None:
        while (answer := await self.conn.receive()) is not None:
            answered, box = self.waiting.popleft()
            box.append(answer)
            answered.set()


class _FanOut:
    def __init__(self, upstreams: list[_ExchangeUpstream]) -> None:
        self.upstreams = upstreams

    async def handle(self, client: FramedConnection) -> None:
        async def one(payload: bytes) -> None:
            for upstream in self.upstreams:
                payload = await upstream.exchange(payload)
            with contextlib.suppress(OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
                await client.send(payload)

        async with anyio.create_task_group() as tg:
            while (payload := await client.receive(IDLE_S)) is not None:
                tg.start_soon(one, payload)


class _EchoSession:
    """Answers the frames of each read with themselves, in one write."""

    def __init__(self, conn: FrameConnection) -> None:
        self.conn = conn

    def frames_received(self, frames: list[bytes]) -> None:
        self.conn.send_many(frames)

    def connection_closed(self, error: BaseException | None) -> None:
        return None


class _UpstreamSession(_EchoSession):
    """The one upstream connection: answers come back in order, each to the client first in line."""

    def __init__(self, conn: FrameConnection) -> None:
        super().__init__(conn)
        self.waiting: deque[FrameConnection] = deque()

    def frames_received(self, frames: list[bytes]) -> None:
        answers: dict[FrameConnection, list[bytes]] = {}
        for answer in frames:
            answers.setdefault(self.waiting.popleft(), []).append(answer)
        for client, mine in answers.items():
            client.send_many(mine)  # dropped if that client has gone


class _DownstreamSession(_EchoSession):
    def __init__(self, conn: FrameConnection, upstream: _UpstreamSession) -> None:
        super().__init__(conn)
        self.upstream = upstream

    def frames_received(self, frames: list[bytes]) -> None:
        self.upstream.waiting.extend([self.conn] * len(frames))
        self.upstream.conn.send_many(frames)


class _RouteUpstreamSession(_EchoSession):
    """An upstream of ``--via`` on the callback path: answers come back in order, each for the client and the step
    of its route first in line; the answer goes on to the route's next upstream, or back to the client."""

    def __init__(self, conn: FrameConnection) -> None:
        super().__init__(conn)
        self.waiting: deque[tuple[FrameConnection, int]] = deque()
        self.route: list[_RouteUpstreamSession] = []

    def frames_received(self, frames: list[bytes]) -> None:
        route = self.route
        for answer in frames:
            client, step = self.waiting.popleft()
            step += 1
            if step < len(route):
                route[step].waiting.append((client, step))
                route[step].conn.send(answer)
            else:
                client.send(answer)  # dropped if that client has gone


class _RouteDownstreamSession(_EchoSession):
    def __init__(self, conn: FrameConnection, route: list[_RouteUpstreamSession]) -> None:
        super().__init__(conn)
        self.first = route[0]

    def frames_received(self, frames: list[bytes]) -> None:
        self.first.waiting.extend([(self.conn, 0)] * len(frames))
        self.first.conn.send_many(frames)


async def _serve_route_callbacks(
    port: int, via: list[str], *, task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED
) -> None:
    """``--via`` on the callback path: one connection per distinct upstream (the same address twice is one
    connection, as the HSM link is), every frame exchanged with each upstream in turn."""
    shared: dict[str, _RouteUpstreamSession] = {}
    links: list[FrameConnection] = []
    try:
        for address in via:
            if address not in shared:
                link, shared[address] = await _connect_session(address, _RouteUpstreamSession)
                links.append(link)
        route = [shared[address] for address in via]
        for upstream in shared.values():
            upstream.route = route
        sessions = functools.partial(_RouteDownstreamSession, route=route)
        await serve_frames("127.0.0.1", port, sessions, name="relay", task_status=task_status)
    finally:
        for link in links:
            await link.aclose()


async def _serve_callbacks(
    port: int, to: str | None, *, task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED
) -> None:
    """The relay or echo on the runtime's callback path (:mod:`acqkit.frameprotocol`)."""
    if to is None:
        await serve_frames("127.0.0.1", port, _EchoSession, name="relay", task_status=task_status)
        return
    link, upstream = await _connect_session(to, _UpstreamSession)
    try:
        sessions = functools.partial(_DownstreamSession, upstream=upstream)
        await serve_frames("127.0.0.1", port, sessions, name="relay", task_status=task_status)
    finally:
        await link.aclose()


async def _connect_session(address: str, session: Callable[[FrameConnection], S]) -> tuple[FrameConnection, S]:
    """A callback-path connection to ``address`` (``host:port``) and the session ``session`` made for it."""
    host, _, port = address.rpartition(":")
    made: list[S] = []

    def open_session(conn: FrameConnection) -> S:
        made.append(session(conn))
        return made[0]

    link = await connect_frames(host, int(port), open_session, timeout=5, name="relay")
    return link, made[0]


async def _connect(address: str) -> FramedConnection:
    host, _, port = address.rpartition(":")
    return await connect(host, int(port), timeout=5)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", type=int, required=True)
    parser.add_argument("--to")
    parser.add_argument("--echo", action="store_true")
    parser.add_argument("--via", action="append", default=[])
    parser.add_argument("--callbacks", action="store_true")
    args = parser.parse_args()

    async def run() -> None:
        async with anyio.create_task_group() as tg:
            if args.callbacks and args.via:
                bound = await tg.start(_serve_route_callbacks, args.listen, args.via)
                announce("relay", "127.0.0.1", bound)
                return
            if args.callbacks:
                bound = await tg.start(_serve_callbacks, args.listen, None if args.echo else args.to)
                announce("relay", "127.0.0.1", bound)
                return
            handler: ConnectionHandler = _echo
            if args.via:
                shared: dict[str, _ExchangeUpstream] = {}
                for address in args.via:  # the same address twice is one connection, as the HSM link is
                    if address not in shared:
                        shared[address] = _ExchangeUpstream(await _connect(address))
                        tg.start_soon(shared[address].return_answers)
                handler = _FanOut([shared[address] for address in args.via]).handle
            elif not args.echo:
                upstream = _SharedUpstream(await _connect(args.to))
                tg.start_soon(upstream.return_answers)
                handler = upstream.handle
            bound = await tg.start(functools.partial(serve_tcp, "127.0.0.1", args.listen, handler, name="relay"))
            announce("relay", "127.0.0.1", bound)

    return run_service(run)


if __name__ == "__main__":
    raise SystemExit(main())
