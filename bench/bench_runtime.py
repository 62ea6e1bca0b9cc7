"""The shared runtime's two per-message costs, each beside what it replaced, alternated in one process
(CPU seconds of this process, so other jobs on the machine move the figures less than wall-clock rates):

- a framed round trip over loopback TCP (both ends in this process): ``FramedConnection`` (on asyncio, the
  direct transport path of ``acqkit/directsocket.py``) beside the same frames through anyio's
  ``SocketStream`` send/receive with the same framer — what ``FramedConnection`` did before;
- a hand-over of a call to a worker thread and back: ``acqkit.dedicated.DedicatedThread`` (what a group commit
  uses) beside ``anyio.to_thread.run_sync``.

Run on the backend ``acqsim`` services run on (uvloop where installed). Best of ``ROUNDS`` for each.
"""

from __future__ import annotations

import functools
import resource
from collections.abc import Awaitable, Callable
from typing import Final

import anyio
import anyio.abc
import anyio.to_thread

from acqkit.dedicated import DedicatedThread
from acqkit.netio import FramedConnection, connect, serve_tcp
from acqkit.runner import backend_options
from bench.report import emit
from wire.framing import NEED_DATA, LengthPrefixFramer, frame

ROUND_TRIPS: Final = 5_000
HAND_OVERS: Final = 3_000
ROUNDS: Final = 3
#: About a POS purchase's size on the wire.
PAYLOAD: Final = bytes(120)
HOST: Final = "127.0.0.1"


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of the process: the worker's too
    return usage.ru_utime + usage.ru_stime


async def _cpu_per_call(action: Callable[[], Awaitable[object]], calls: int) -> float:
    """CPU µs per ``action()``."""
    start = _cpu_s()
    for _ in range(calls):
        await action()
    return (_cpu_s() - start) * 1e6 / calls


class AnyioFramed:
    """The frames through anyio's stream calls, framed the same way (the path before the direct one)."""

    def __init__(self, stream: anyio.abc.ByteStream) -> None:
        self.stream, self.framer = stream, LengthPrefixFramer()

    async def round_trip(self) -> None:
        await self.stream.send(frame(PAYLOAD))
        while self.framer.next_frame() is NEED_DATA:
            self.framer.receive_data(await self.stream.receive())


async def _echo(conn: FramedConnection) -> None:
    while (payload := await conn.receive()) is not None:
        await conn.send(payload)


async def _anyio_echo(stream: anyio.abc.ByteStream) -> None:
    framed = AnyioFramed(stream)
    try:
        while True:
            while isinstance(item := framed.framer.next_frame(), bytes):
                await stream.send(frame(item))
            framed.framer.receive_data(await stream.receive())
    except (anyio.EndOfStream, anyio.BrokenResourceError):
        pass


async def measure() -> dict[str, float]:
    best: dict[str, float] = {}

    def keep(name: str, micros: float) -> None:
        best[name] = min(best.get(name, micros), micros)

    async with anyio.create_task_group() as tg:
        port = await tg.start(functools.partial(serve_tcp, HOST, 0, _echo, name="echo"))
        listener = await anyio.create_tcp_listener(local_host=HOST)
        tg.start_soon(listener.serve, _anyio_echo)
        anyio_port = listener.extra(anyio.abc.SocketAttribute.local_port)
        framed = await connect(HOST, port, timeout=5)
        through_anyio = AnyioFramed(await anyio.connect_tcp(HOST, anyio_port))

        async def framed_round_trip() -> None:
            await framed.send(PAYLOAD)
            await framed.receive()

        worker = DedicatedThread("bench-worker")
        try:
            for _ in range(ROUNDS):
                keep("round_trip_direct_us", await _cpu_per_call(framed_round_trip, ROUND_TRIPS))
                keep("round_trip_anyio_us", await _cpu_per_call(through_anyio.round_trip, ROUND_TRIPS))
                keep("hand_over_dedicated_us", await _cpu_per_call(lambda: worker.run(int), HAND_OVERS))
                keep("hand_over_to_thread_us", await _cpu_per_call(lambda: anyio.to_thread.run_sync(int), HAND_OVERS))
        finally:
            worker.stop()
        await framed.aclose()
        await through_anyio.stream.aclose()
        tg.cancel_scope.cancel()
    best["round_trip_anyio_over_direct"] = best["round_trip_anyio_us"] / best["round_trip_direct_us"]
    best["hand_over_to_thread_over_dedicated"] = best["hand_over_to_thread_us"] / best["hand_over_dedicated_us"]
    return best


def main() -> None:
    backend, options = backend_options()
    figures = anyio.run(measure, backend=backend, backend_options=options)
    print(
        f"framed round trip over loopback, both ends here: {figures['round_trip_direct_us']:.1f} µs of CPU "
        f"(FramedConnection) vs {figures['round_trip_anyio_us']:.1f} µs through anyio's stream calls "
        f"(x{figures['round_trip_anyio_over_direct']:.2f})"
    )
    print(
        f"hand-over to a worker thread and back: {figures['hand_over_dedicated_us']:.1f} µs of CPU "
        f"(DedicatedThread) vs {figures['hand_over_to_thread_us']:.1f} µs (anyio.to_thread.run_sync, "
        f"x{figures['hand_over_to_thread_over_dedicated']:.2f})"
    )
    emit(figures)


if __name__ == "__main__":
    main()
