"""The load generator alone against the echo host: purchases per second on one core, beside a floor; and the
load generator's memory with 10,000 idle signed-on terminals.

Processes (spawned, each pinned to a core when the machine has two or more, so "one core" means one):
- the echo host (``terminal/echohost``: decodes each request, answers it approved with a MAC) on core 1;
- the load generator (``run_load(..., keep_alive=True)``, the pipelined engine: ``TERMINALS`` terminals over
  ``CONNECTIONS`` connections, offered ``OFFERED_RATE``/s of purchases for ``SECONDS``) on core 0;
- for the floor, in place of both: a plain echo of each frame and a client that keeps the same number of
  frames of the same size in flight over the same connections, doing nothing else.

Figures: ``purchases_per_s`` — approved purchases the run completed per wall-clock second (depends on how
busy the shared machine is); ``purchases_per_cpu_s`` — the same per CPU-second the load generator used: its
capacity on one core of its own, the figure to hold against the 10,000/s target; ``floor_*`` — the same for
the raw client; ``vs_floor`` — capacity / floor capacity. ``idle_rss_mb`` — resident set (VmRSS) of the load
generator process with ``IDLE_TERMINALS`` terminals signed on, each on a connection of its own, idle.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import multiprocessing.queues
import os
import queue
import resource
import time
from collections.abc import Callable, Coroutine
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, Final

import anyio

from acqkit.config import AcqsimConfig, Endpoint
from acqkit.netio import FramedConnection, connect, serve_tcp
from bench.report import emit
from terminal.echohost.server import echo_host_for, serve_echo_host
from terminal.load.engine import EngineOptions, LoadEngine
from terminal.load.runner import LOAD_ANSWER_TIMEOUT_S, load_cards, load_sessions, run_load, with_load_terminals
from terminal.load.schedule import Mix, OpenLoopSchedule
from wire.tpdu import Tpdu

TERMINALS: Final = 200
CONNECTIONS: Final = 4
OFFERED_RATE: Final = 30_000.0
SECONDS: Final = 4.0
CARDS: Final = 100
TARGET_PER_S: Final = 10_000
IDLE_TERMINALS: Final = 10_000
IDLE_RSS_LIMIT_MB: Final = 160
#: A purchase request and its answer are about this long (TPDU, header, body with track 2, PIN block, MAC).
FLOOR_FRAME_LEN: Final = 120
START_TIMEOUT_S: Final = 60.0
LOAD_CORE: Final = 0
ECHO_CORE: Final = 1

Queue = multiprocessing.queues.Queue


def _pin(core: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > core:
        os.sched_setaffinity(0, {core})


def _run(core: int, main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    _pin(core)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    anyio.run(main, backend="asyncio", backend_options={"use_uvloop": True})


def _process(core: int, target: Callable[..., Coroutine[Any, Any, None]], *args: Any) -> BaseProcess:
    return multiprocessing.get_context("spawn").Process(target=_run, args=(core, functools.partial(target, *args)))


def _config() -> AcqsimConfig:
    return with_load_terminals(AcqsimConfig.default(), max(TERMINALS, IDLE_TERMINALS))


def _cpu_s(pid: int | None) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux ``/proc``; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# -- the processes ------------------------------------------------------------------------------------------


async def _echo_host(ready: Queue[Any]) -> None:
    async with anyio.create_task_group() as tg:
        ready.put(
            await tg.start(functools.partial(serve_echo_host, echo_host_for(AcqsimConfig.default()), "127.0.0.1", 0))
        )


async def _raw_echo(ready: Queue[Any]) -> None:
    async def handle(conn: FramedConnection) -> None:
        while (payload := await conn.receive()) is not None:
            answers = [payload, *conn.buffered_frames()]
            await conn.send_many([Tpdu.parse(p).swapped().to_bytes() + p[5:] for p in answers])

    async with anyio.create_task_group() as tg:
        ready.put(await tg.start(functools.partial(serve_tcp, "127.0.0.1", 0, handle, name="echo")))


async def _load(port: int, result: Queue[Any]) -> None:
    config = with_load_terminals(AcqsimConfig.default(), TERMINALS)
    cpu, wall = time.process_time(), time.perf_counter()
    stats, elapsed = await run_load(
        config,
        terminals=TERMINALS,
        schedule=OpenLoopSchedule(OFFERED_RATE, SECONDS),
        mix=Mix.parse("purchase=100"),
        against=Endpoint(host="127.0.0.1", port=port),
        keep_alive=True,
        connections=CONNECTIONS,
        cards=load_cards(config, CARDS),
    )
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    result.put(
        {
            "approved": stats.codes.get("00", 0),
            "completed": stats.completed,
            "elapsed": elapsed,
            "cpu": cpu,
            "wall": wall,
            "p50_ms": stats.percentile_ms(50),
        }
    )


#: The short-connection runs (a connection per purchase, as dial-up and GPRS terminals make): terminals and
#: offered rate, below what the echo host answers on its core.
SHORT_TERMINALS: Final = 64
SHORT_OFFERED_RATE: Final = 3_000.0


async def _load_short(port: int, result: Queue[Any], callbacks: bool) -> None:
    """The load generator with a connection per purchase: short calls stepped from the loop's callbacks
    (asyncio's default) or, for the figure beside it, a task per call (as on trio)."""
    config = with_load_terminals(AcqsimConfig.default(), SHORT_TERMINALS)
    cpu = time.process_time()
    stats, elapsed = await run_load(
        config,
        terminals=SHORT_TERMINALS,
        schedule=OpenLoopSchedule(SHORT_OFFERED_RATE, SECONDS),
        mix=Mix.parse("purchase=100"),
        against=Endpoint(host="127.0.0.1", port=port),
        cards=load_cards(config, CARDS),
        short_calls_by_callbacks=callbacks,
    )
    result.put({"approved": stats.codes.get("00", 0), "elapsed": elapsed, "cpu": time.process_time() - cpu})


async def _floor(port: int, result: Queue[Any]) -> None:
    request = Tpdu(dst="0003", src="0000").to_bytes() + bytes(FLOOR_FRAME_LEN - 5)
    answers = 0
    deadline = anyio.current_time() + SECONDS

    async def one_connection(in_flight: int) -> None:
        nonlocal answers
        conn = await connect("127.0.0.1", port, timeout=START_TIMEOUT_S)
        try:
            await conn.send_many([request] * in_flight)
            while anyio.current_time() < deadline and await conn.receive() is not None:
                got = 1 + len(conn.buffered_frames())
                answers += got
                await conn.send_many([request] * got)
        finally:
            await conn.aclose()

    cpu, wall = time.process_time(), time.perf_counter()
    async with anyio.create_task_group() as tg:
        for index in range(CONNECTIONS):
            tg.start_soon(one_connection, TERMINALS // CONNECTIONS + (index < TERMINALS % CONNECTIONS))
    result.put({"completed": answers, "cpu": time.process_time() - cpu, "wall": time.perf_counter() - wall})


async def _idle_terminals(port: int, result: Queue[Any]) -> None:
    config = _config()
    before = _rss_mb()
    sessions = load_sessions(config, IDLE_TERMINALS)
    engine = LoadEngine(
        sessions,
        EngineOptions(
            schedule=OpenLoopSchedule(1.0, 0.5),
            mix=Mix.parse("purchase=100"),
            cards=load_cards(config, 1),
            connections=IDLE_TERMINALS,
            answer_timeout=LOAD_ANSWER_TIMEOUT_S,
        ),
    )
    figures: dict[str, float] = {}

    async def measure() -> None:
        figures["rss_mb"] = _rss_mb()
        figures["signed_on"] = sum(s.state.signed_on for s in sessions)

    await engine.run(Endpoint(host="127.0.0.1", port=port), signed_on=measure)
    result.put({**figures, "before_mb": before})


# -- measurements -------------------------------------------------------------------------------------------


def _pair(
    server: Callable[..., Coroutine[Any, Any, None]], client: Callable[..., Coroutine[Any, Any, None]], *args: Any
) -> Any:
    ctx = multiprocessing.get_context("spawn")
    ready: Queue[Any] = ctx.Queue()
    result: Queue[Any] = ctx.Queue()
    server_process = _process(ECHO_CORE, server, ready)
    server_process.start()
    try:
        port = ready.get(timeout=START_TIMEOUT_S)
        server_cpu = _cpu_s(server_process.pid)
        client_process = _process(LOAD_CORE, client, port, result, *args)
        client_process.start()
        try:
            give_up = time.monotonic() + START_TIMEOUT_S + SECONDS * 4
            while time.monotonic() < give_up:
                with contextlib.suppress(queue.Empty):
                    figures: dict[str, Any] = result.get(timeout=1.0)
                    return {**figures, "server_cpu": _cpu_s(server_process.pid) - server_cpu}
                if not client_process.is_alive():
                    raise RuntimeError(f"{client.__name__} ended without a result (exit {client_process.exitcode})")
            raise TimeoutError(f"{client.__name__} gave no result in time")
        finally:
            client_process.join(START_TIMEOUT_S)
    finally:
        server_process.terminate()
        server_process.join(START_TIMEOUT_S)


def main() -> None:
    load = _pair(_echo_host, _load)
    floor = _pair(_raw_echo, _floor)
    idle = _pair(_echo_host, _idle_terminals)
    short = {path: _pair(_echo_host, _load_short, path == "callbacks") for path in ("callbacks", "tasks")}
    short_per_cpu_s = {path: run["approved"] / run["cpu"] for path, run in short.items()}
    capacity = load["approved"] / load["cpu"]
    floor_capacity = floor["completed"] / floor["cpu"]
    print(
        f"load generator: {load['approved']:,} approved purchases in {load['elapsed']:.2f} s "
        f"({load['approved'] / load['elapsed']:,.0f}/s wall, p50 {load['p50_ms']:.1f} ms), "
        f"{load['cpu']:.2f} CPU-s: {capacity:,.0f} purchases per CPU-second (target {TARGET_PER_S:,})"
    )
    print(
        f"echo host: {load['server_cpu']:.2f} CPU-s for those answers: "
        f"{load['approved'] / load['server_cpu']:,.0f} answers per CPU-second"
    )
    print(
        f"floor (raw frames, same connections and frames in flight): {floor['completed'] / floor['wall']:,.0f}/s "
        f"wall, {floor_capacity:,.0f} per CPU-second; load generator / floor {capacity / floor_capacity:.2f}"
    )
    print(
        f"{int(idle['signed_on']):,} idle signed-on terminals, a connection each: load generator RSS "
        f"{idle['rss_mb']:.0f} MB (limit {IDLE_RSS_LIMIT_MB}; {idle['before_mb']:.0f} MB before the terminals)"
    )
    print(
        f"a connection per purchase ({SHORT_TERMINALS} terminals, offered {SHORT_OFFERED_RATE:,.0f}/s): "
        f"{short_per_cpu_s['callbacks']:,.0f} purchases per CPU-second stepped from loop callbacks, "
        f"{short_per_cpu_s['tasks']:,.0f} with a task per call (as on trio): "
        f"× {short_per_cpu_s['callbacks'] / short_per_cpu_s['tasks']:.2f}"
    )
    emit(
        {
            "short_purchases_per_cpu_s": short_per_cpu_s["callbacks"],
            "short_task_path_purchases_per_cpu_s": short_per_cpu_s["tasks"],
            "purchases_per_s": load["approved"] / load["elapsed"],
            "purchases_per_cpu_s": capacity,
            "echo_host_answers_per_cpu_s": load["approved"] / load["server_cpu"],
            "target_per_cpu_s": TARGET_PER_S,
            "floor_per_s": floor["completed"] / floor["wall"],
            "floor_per_cpu_s": floor_capacity,
            "vs_floor": capacity / floor_capacity,
            "idle_terminals": int(idle["signed_on"]),
            "idle_rss_mb": idle["rss_mb"],
            "idle_rss_before_mb": idle["before_mb"],
            "idle_rss_limit_mb": IDLE_RSS_LIMIT_MB,
        }
    )


if __name__ == "__main__":
    main()
