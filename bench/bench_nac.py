"""NAC throughput against a plain length-prefixed relay, and the NAC's memory with 10,000 idle terminals.

Every party is its own process, so the process under test has an event loop (asyncio + uvloop) to itself:
an echo front-end (answers each frame at once, TPDU swapped), the process under test (the NAC, or a plain
relay that pipes each terminal connection's frames over an upstream connection of its own, no routing), and
a load process keeping ``WINDOW`` requests in flight on each of ``CONNECTIONS`` terminal connections for
``SECONDS``. Both runs use the same echo and load, one after the other; the figure that matters is the ratio.
The machine has 2 cores for the 3 processes, so absolute numbers are low and noisy.

Memory: the NAC's resident set (VmRSS from /proc/PID/status) before and after ``IDLE_CONNECTIONS`` terminal
connections are open and accepted (the NAC's own status port says when); the difference divided by the
count is the cost of one idle terminal (its reader and writer tasks, outbox, framer, socket).
"""

from __future__ import annotations

import contextlib
import functools
import json
import multiprocessing
import multiprocessing.queues
import resource
import socket
import time
from collections.abc import Callable, Coroutine
from multiprocessing.process import BaseProcess
from typing import Any, Final

import anyio
import anyio.abc

from acqkit.netio import FramedConnection, connect, serve_tcp
from bench.report import emit
from nac.limits import NacLimits
from nac.routes import Member, RouteTable
from nac.server import NacPorts, NacServer
from wire.framing import END_OF_STREAM, NEED_DATA, LengthPrefixFramer, frame
from wire.tpdu import Tpdu

CONNECTIONS: Final = 40
WINDOW: Final = 4
SECONDS: Final = 3.0
#: Relay and NAC runs alternate this many times; the best run of each is compared (the 2 cores are shared).
ROUNDS: Final = 3
IDLE_CONNECTIONS: Final = 10_000
REQUEST: Final = Tpdu(dst="0003", src="0000").to_bytes() + bytes.fromhex("603100000000") + bytes(80)
START_TIMEOUT_S: Final = 20.0

Queue = multiprocessing.queues.Queue


def _raise_fd_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    _raise_fd_limit()
    anyio.run(main, backend="asyncio", backend_options={"use_uvloop": True})


# -- the processes ------------------------------------------------------------------------------------------


async def _echo(ready: Queue[Any]) -> None:
    async def handle(conn: FramedConnection) -> None:
        while (payload := await conn.receive()) is not None:
            await conn.send(Tpdu.parse(payload).swapped().to_bytes() + payload[5:])

    async with anyio.create_task_group() as tg:
        ready.put(await tg.start(functools.partial(serve_tcp, "127.0.0.1", 0, handle, name="echo")))


async def _relay(ready: Queue[Any], upstream_port: int) -> None:
    async def handle(conn: FramedConnection) -> None:
        upstream = await connect("127.0.0.1", upstream_port, timeout=START_TIMEOUT_S)
        try:
            async with anyio.create_task_group() as tg:

                async def pump_down() -> None:
                    with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                        while (answer := await upstream.receive()) is not None:
                            await conn.send(answer)
                    tg.cancel_scope.cancel()

                tg.start_soon(pump_down)
                while (payload := await conn.receive()) is not None:
                    await upstream.send(payload)
                tg.cancel_scope.cancel()
        finally:
            await upstream.aclose()

    async with anyio.create_task_group() as tg:
        ready.put(await tg.start(functools.partial(serve_tcp, "127.0.0.1", 0, handle, name="relay")))


async def _nac(ready: Queue[Any], upstream_port: int) -> None:
    table = RouteTable(routes={"0003": "0003"}, groups={"0003": (Member(host="127.0.0.1", port=upstream_port),)})
    server = NacServer(table, NacLimits(max_connections=IDLE_CONNECTIONS + 100, max_in_flight=WINDOW))
    async with anyio.create_task_group() as tg:
        ports: NacPorts = await tg.start(functools.partial(server.serve, "127.0.0.1", 0, status_port=0))
        while not all(m.up for m in server.stats.members.values()):  # noqa: ASYNC110 - start-up only
            await anyio.sleep(0.01)
        ready.put((ports.listen, ports.status))


async def _load(port: int, result: Queue[Any]) -> None:
    answers = 0
    request = frame(REQUEST)
    deadline = anyio.current_time() + SECONDS

    async def one_terminal() -> None:
        nonlocal answers
        stream = await anyio.connect_tcp("127.0.0.1", port)
        framer = LengthPrefixFramer()
        async with stream:
            await stream.send(request * WINDOW)
            while anyio.current_time() < deadline:
                framer.receive_data(await stream.receive())
                got = 0
                while (item := framer.next_frame()) is not NEED_DATA and item is not END_OF_STREAM:
                    got += 1
                answers += got
                if got:
                    await stream.send(request * got)

    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(CONNECTIONS):
            tg.start_soon(one_terminal)
    result.put(answers / (time.perf_counter() - started))


def _process(target: Callable[..., Coroutine[Any, Any, None]], *args: Any) -> BaseProcess:
    return multiprocessing.get_context("spawn").Process(target=_run, args=(functools.partial(target, *args),))


# -- measurements -------------------------------------------------------------------------------------------


def _throughput(target: Callable[..., Coroutine[Any, Any, None]], echo_port: int) -> float:
    ctx = multiprocessing.get_context("spawn")
    ready: Queue[Any] = ctx.Queue()
    result: Queue[Any] = ctx.Queue()
    server = _process(target, ready, echo_port)
    server.start()
    try:
        port = ready.get(timeout=START_TIMEOUT_S)
        port = port[0] if isinstance(port, tuple) else port
        load = _process(_load, port, result)
        load.start()
        rate: float = result.get(timeout=START_TIMEOUT_S + SECONDS)
        load.join(START_TIMEOUT_S)
        return rate
    finally:
        server.terminate()
        server.join()


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def _open_connections(status_port: int) -> int:
    with socket.create_connection(("127.0.0.1", status_port), timeout=START_TIMEOUT_S) as status:
        data = b""
        while chunk := status.recv(65536):
            data += chunk
    open_now: int = json.loads(data)["connections"]["open"]
    return open_now


def _idle_memory(echo_port: int) -> tuple[int, int, int]:
    ctx = multiprocessing.get_context("spawn")
    ready: Queue[Any] = ctx.Queue()
    server = _process(_nac, ready, echo_port)
    server.start()
    sockets: list[socket.socket] = []
    try:
        port, status_port = ready.get(timeout=START_TIMEOUT_S)
        time.sleep(0.5)
        before = _rss_kib(server.pid or 0)
        for _ in range(IDLE_CONNECTIONS):
            sockets.append(socket.create_connection(("127.0.0.1", port), timeout=START_TIMEOUT_S))
        deadline = time.monotonic() + START_TIMEOUT_S
        while (accepted := _open_connections(status_port)) < IDLE_CONNECTIONS and time.monotonic() < deadline:
            time.sleep(0.2)
        after = _rss_kib(server.pid or 0)
        return before, after, accepted
    finally:
        for sock in sockets:
            sock.close()
        server.terminate()
        server.join()


def main() -> None:
    _raise_fd_limit()
    ctx = multiprocessing.get_context("spawn")
    ready: Queue[Any] = ctx.Queue()
    echo = _process(_echo, ready)
    echo.start()
    try:
        echo_port = ready.get(timeout=START_TIMEOUT_S)
        relay_rates: list[float] = []
        nac_rates: list[float] = []
        for _ in range(ROUNDS):
            relay_rates.append(_throughput(_relay, echo_port))
            nac_rates.append(_throughput(_nac, echo_port))
        relay_rate, nac_rate = max(relay_rates), max(nac_rates)
        print(f"load: {CONNECTIONS} terminal connections x {WINDOW} in flight, {SECONDS:.0f} s per run, 80-byte body")
        print(
            f"plain relay       {relay_rate:10.0f} round trips/s (best of {', '.join(f'{r:.0f}' for r in relay_rates)})"
        )
        print(f"NAC               {nac_rate:10.0f} round trips/s (best of {', '.join(f'{r:.0f}' for r in nac_rates)})")
        print(f"NAC / relay       {nac_rate / relay_rate:10.2f}")
        before, after, accepted = _idle_memory(echo_port)
        print(f"NAC RSS idle      {before / 1024:10.1f} MiB")
        print(f"NAC RSS with {accepted} idle terminals {after / 1024:.1f} MiB")
        print(f"per idle terminal {(after - before) * 1024 / max(accepted, 1):10.0f} bytes")
        emit(
            {
                "relay_per_s": relay_rate,
                "nac_per_s": nac_rate,
                "nac_vs_relay": nac_rate / relay_rate,
                "idle_terminal_bytes": (after - before) * 1024 / max(accepted, 1),
            }
        )
    finally:
        echo.terminate()
        echo.join()


if __name__ == "__main__":
    main()
