"""Plain length-prefixed relays and an echo, for the end-to-end floor: ``python -m bench.relay``.

python -m bench.relay --listen PORT --to HOST:PORT    forward each frame, return its answer
python -m bench.relay --listen PORT --echo            answer each frame with itself
python -m bench.relay --callbacks ...                 the same relay or echo as asyncio protocol callbacks
python -m bench.relay --listen PORT --via HOST:PORT [--via HOST:PORT ...]
                                                     exchange each frame with each upstream in turn
                                                     (the front-end's shape: HSM, ledger, HSM), then answer

Like the NAC and the front-end, a relay carries every client's frames on ONE upstream connection, opened at
start: answers come back in the order the frames went up (the echo and the relays answer in order), so each is
handed to the client first in line. No decoding, routing, checks or crypto: the cost of the hops alone.
With ``--via``, each frame gets a task of its own (as in the front-end, whose transactions wait on peers) that
sends it to each upstream in turn, waits for that upstream's answer, and answers the client with the last one.
With ``--callbacks`` (asyncio only) the relay or echo runs as protocol callbacks with no task per connection or
frame: the frames a read brings are cut, forwarded or echoed, and written in one write, inside the read's
callback. It measures what a callback-driven shell would cost on the same hops (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
from collections import deque
from typing import Final

import anyio

from acqkit.netio import ConnectionHandler, FramedConnection, connect, serve_tcp
from acqkit.runner import announce, run_service
from wire.framing import LengthPrefixFramer, frame

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


class _FramesProtocol(asyncio.Protocol):
    """Cuts the frames each read brings and hands them over together (``on_frames``), inside the callback."""

    def __init__(self) -> None:
        self.framer = LengthPrefixFramer()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are duck-typed

    def data_received(self, data: bytes) -> None:
        self.framer.receive_data(data)
        frames = []
        while isinstance(item := self.framer.next_frame(), bytes):
            frames.append(item)
        if frames:
            self.on_frames(frames)

    def on_frames(self, frames: list[bytes]) -> None:
        raise NotImplementedError

    def write(self, frames: list[bytes]) -> None:
        assert self.transport is not None
        self.transport.write(b"".join(frame(payload) for payload in frames))


class _EchoProtocol(_FramesProtocol):
    def on_frames(self, frames: list[bytes]) -> None:
        self.write(frames)


class _UpstreamProtocol(_FramesProtocol):
    """The one upstream connection: answers come back in order, each to the client first in line."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting: deque[_DownstreamProtocol] = deque()

    def on_frames(self, frames: list[bytes]) -> None:
        answers: dict[_DownstreamProtocol, list[bytes]] = {}
        for answer in frames:
            answers.setdefault(self.waiting.popleft(), []).append(answer)
        for client, mine in answers.items():
            if client.transport is not None and not client.transport.is_closing():
                client.write(mine)


class _DownstreamProtocol(_FramesProtocol):
    def __init__(self, upstream: _UpstreamProtocol) -> None:
        super().__init__()
        self.upstream = upstream

    def on_frames(self, frames: list[bytes]) -> None:
        self.upstream.waiting.extend([self] * len(frames))
        self.upstream.write(frames)


async def _serve_callbacks(port: int, to: str | None) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    if to is None:
        return await loop.create_server(_EchoProtocol, "127.0.0.1", port)
    host, _, upstream_port = to.rpartition(":")
    _, upstream = await loop.create_connection(_UpstreamProtocol, host, int(upstream_port))
    return await loop.create_server(functools.partial(_DownstreamProtocol, upstream), "127.0.0.1", port)


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
        if args.callbacks:
            server = await _serve_callbacks(args.listen, None if args.echo else args.to)
            announce("relay", "127.0.0.1", args.listen)
            async with server:
                await anyio.sleep_forever()
        async with anyio.create_task_group() as tg:
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
