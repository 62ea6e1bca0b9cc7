"""End to end: approved purchases per second through all services as separate processes (``acqsim up``),
beside a relay floor — a chain of plain length-prefixed relays with the same hop count (terminal → relay
(NAC) → relay (front-end) → echo (ledger)) — driven the same way in the same run.

Each terminal opens one short connection per transaction, as the POS terminals do (a second pair of runs
keeps connections open). The relays, like the NAC and the front-end, carry all traffic on one upstream
connection each. The pipeline figure includes PIN and MAC checks at the HSM and a durable posting at the
ledger; the floor includes none of it. CPU per purchase by process says where the time goes.
"""

from __future__ import annotations

import contextlib
import functools
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import anyio

from acqkit.config import AcqsimConfig, Endpoint
from acqkit.netio import connect
from acqkit.runner import backend_options
from acqsim.processes import pipeline_processes
from acqsim.supervisor import free_port
from bench.cpu import cpu_by_service, cpu_per_item
from bench.report import emit
from terminal.load.runner import run_load
from terminal.load.schedule import Mix, OpenLoopSchedule

TERMINALS: Final = 32
SECONDS: Final = 5.0
OFFERED_RATE: Final = 4000.0  # more than the pipeline can do on 2 cores: measures capacity
#: The latency run offers this share of the capacity just measured: a load the pipeline keeps up with.
PACED_SHARE: Final = 0.5


@contextlib.contextmanager
def relay_chain() -> Iterator[Endpoint]:
    ports = [free_port() for _ in range(3)]
    argvs = [
        [sys.executable, "-m", "bench.relay", "--listen", str(ports[2]), "--echo"],
        [sys.executable, "-m", "bench.relay", "--listen", str(ports[1]), "--to", f"127.0.0.1:{ports[2]}"],
        [sys.executable, "-m", "bench.relay", "--listen", str(ports[0]), "--to", f"127.0.0.1:{ports[1]}"],
    ]
    processes: list[subprocess.Popen[str]] = []
    try:
        for argv in argvs:  # downstream first: each relay connects to the next one when it starts
            process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
            processes.append(process)
            assert process.stdout is not None
            process.stdout.readline()  # READY
        yield Endpoint(host="127.0.0.1", port=ports[0])
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)
            if process.stdout is not None:
                process.stdout.close()


async def relay_rate(endpoint: Endpoint, clients: int, seconds: float, payload: bytes, *, keep_alive: bool) -> float:
    """Round trips per second through the relay chain: closed loop, ``clients`` at once, each opening a
    connection per round trip (as POS terminals do) or keeping one open."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal done
        conn = None
        while time.perf_counter() < deadline:
            if conn is None:
                conn = await connect(endpoint.host, endpoint.port, timeout=5)
            await conn.send(payload)
            await conn.receive(5)
            if not keep_alive:
                await conn.aclose()
                conn = None
            done += 1
        if conn is not None:
            await conn.aclose()

    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(clients):
            tg.start_soon(client)
    return done / (time.perf_counter() - start)


def _run(
    config: AcqsimConfig,
    nac: Endpoint,
    rate: float,
    backend: str,
    options: dict[str, Any],
    *,
    keep_alive: bool = False,
) -> tuple[dict[str, Any], dict[str, float]]:
    """One open-loop run of purchases at ``rate``: its summary, and CPU µs per approved purchase by process."""
    before = cpu_by_service()
    stats, elapsed = anyio.run(
        lambda: run_load(
            config,
            terminals=TERMINALS,
            schedule=OpenLoopSchedule(rate, SECONDS),
            mix=Mix.parse("purchase=100"),
            against=nac,
            keep_alive=keep_alive,
        ),
        backend=backend,
        backend_options=options,
    )
    return stats.summary(elapsed), cpu_per_item(before, cpu_by_service(), stats.codes.get("00", 0))


def measure() -> dict[str, float]:
    backend, options = backend_options()  # as `acqsim load` runs: uvloop when installed
    config = AcqsimConfig.default()
    with tempfile.TemporaryDirectory(prefix="acqsim-bench-e2e-") as tmp:
        with pipeline_processes(config, TERMINALS, Path(tmp)) as nac:
            capacity, cpu = _run(config, nac, OFFERED_RATE, backend, options)
            paced_rate = max(round(capacity["approved_tps"] * PACED_SHARE), 1)
            paced, _ = _run(config, nac, paced_rate, backend, options)
            kept, kept_cpu = _run(config, nac, OFFERED_RATE, backend, options, keep_alive=True)
        with relay_chain() as relay:
            floors = {
                keep_alive: anyio.run(
                    functools.partial(relay_rate, relay, TERMINALS, SECONDS, bytes(129), keep_alive=keep_alive),
                    backend=backend,
                    backend_options=options,
                )
                for keep_alive in (False, True)
            }
            floor = floors[False]
    approved = capacity["approved_tps"]
    figures = {
        "approved_per_s": approved,
        "relay_floor_per_s": floor,
        "ratio": approved / floor if floor else 0.0,
        "paced_rate_per_s": float(paced_rate),
        "paced_approved_per_s": paced["approved_tps"],
        "paced_p50_ms": paced["p50_ms"],
        "paced_p99_ms": paced["p99_ms"],
        "paced_p999_ms": paced["p999_ms"],
        "keep_alive_approved_per_s": kept["approved_tps"],
        "keep_alive_relay_floor_per_s": floors[True],
        "keep_alive_ratio": kept["approved_tps"] / floors[True] if floors[True] else 0.0,
    }
    figures |= {f"cpu_us_{name}": micros for name, micros in sorted(cpu.items())}
    if cpu:
        figures["cpu_us_total"] = sum(cpu.values())
    if kept_cpu:
        figures["keep_alive_cpu_us_total"] = sum(kept_cpu.values())
    return figures


def main() -> None:
    figures = measure()
    print(
        f"capacity: {figures['approved_per_s']:,.0f} approved purchases/s through the four services "
        f"(offered {OFFERED_RATE:,.0f}/s by {TERMINALS} terminals, PIN and MAC checked, postings durable)"
    )
    print(f"relay floor (3 plain hops, a connection per round trip): {figures['relay_floor_per_s']:,.0f} round trips/s")
    print(f"capacity / floor: {figures['ratio']:.3f}")
    print(
        f"paced at {figures['paced_rate_per_s']:,.0f}/s ({PACED_SHARE:.0%} of capacity): "
        f"{figures['paced_approved_per_s']:,.0f} approved/s, latency from due time "
        f"p50 {figures['paced_p50_ms']:.1f} ms, p99 {figures['paced_p99_ms']:.1f} ms, "
        f"p99.9 {figures['paced_p999_ms']:.1f} ms"
    )
    shares = {k[len("cpu_us_") :]: v for k, v in figures.items() if k.startswith("cpu_us_") and k != "cpu_us_total"}
    if shares:
        parts = ", ".join(f"{name} {micros:,.0f}" for name, micros in sorted(shares.items(), key=lambda kv: -kv[1]))
        print(f"CPU µs per approved purchase at capacity: {parts}; total {figures['cpu_us_total']:,.0f}")
    kept_cpu = figures.get("keep_alive_cpu_us_total")
    print(
        f"terminals keeping their NAC connection open: {figures['keep_alive_approved_per_s']:,.0f} approved/s"
        + (f" (CPU {kept_cpu:,.0f} µs per purchase)" if kept_cpu is not None else "")
        + f"; relay floor the same way {figures['keep_alive_relay_floor_per_s']:,.0f}/s;"
        f" ratio {figures['keep_alive_ratio']:.3f}"
    )
    emit(figures)


if __name__ == "__main__":
    main()
