"""End to end: approved purchases per second through all services as separate processes (``acqsim up``),
beside a relay floor — a chain of plain length-prefixed relays with the same hop count (terminal → relay
(NAC) → relay (front-end) → echo (ledger)) — driven the same way in the same run.

Each terminal opens one short connection per transaction, as the POS terminals do (a second pair of runs
keeps connections open: those run on the pipelined engine, ``terminal/load/engine.py``, as ``acqsim load
--keep-alive`` does). Every terminal has a card of its own (``load_cards``): one shared card would meet the
front-end's PIN-try reservation and the ledger's one hot row, which is not what the benchmark measures.
The relays, like the NAC and the front-end, carry all traffic on one upstream
connection each. The pipeline figure includes PIN and MAC checks at the HSM and a durable posting at the
ledger; the floor includes none of it. CPU per purchase by process says where the time goes.

``python -m bench.bench_e2e --keep-alive-only --seconds 5`` runs only the keep-alive capacity run (about 20 s)
and prints CPU µs per approved purchase by process: the quick figure for anyone working on a service's cost.
The full run also measures, before any load, the durable-commit floor under the p99 target
(``bench/durablefloor.py``: three fsynced commits in series on the services' filesystem).

The full run measures latency both ways, each offered half its own capacity: a connection per transaction
(``paced_*``) and connections kept open (``keep_alive_paced_*``, the issue's kept-open latency target); each is
the median of ``PACED_RUNS`` runs, with the p99's least and greatest beside it (``*_p99_ms_min`` / ``_max``). The
kept-open capacity run, whose CPU a purchase and rate are two targets' figures, runs ``CAPACITY_RUNS`` times: the
rate is the median rate, the CPU figures (each process and the total) those of the run with the median total, and
``keep_alive_total_cpu_us_min`` / ``_max`` the spread.

``python -m bench.bench_e2e --paced RATE [--keep-alive] [--stages]`` runs only the paced run at RATE purchases/s
(after a ``WARM_UP_S`` run at the same rate, not counted); with ``--stages`` the services trace, and the stage table of
the measured run (``acqsim trace stages``: NAC, wire, front-end, HSM, journal commits, ledger) says where each
purchase's time went. Traces cost CPU: compare stage tables with each other, latency figures without traces.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import functools
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

import anyio

from acqkit.config import AcqsimConfig, CardFixture, Endpoint
from acqkit.freeport import free_port
from acqkit.netio import connect
from acqkit.runner import backend_options
from acqsim.processes import pipeline_processes
from bench.cpu import cpu_by_service, cpu_per_item, own_cpu_s, process_cpu_s
from bench.durablefloor import serial_commit_latency
from bench.report import emit
from terminal.load.runner import load_cards, run_load, with_load_cards
from terminal.load.schedule import Mix, OpenLoopSchedule

TERMINALS: Final = 32
SECONDS: Final = 5.0
OFFERED_RATE: Final = 4000.0  # more than the pipeline can do on 2 cores: measures capacity
#: The latency run offers this share of the capacity just measured: a load the pipeline keeps up with.
PACED_SHARE: Final = 0.5
#: ``--paced``: a run at the same rate before the measured one (connections, caches, sign-ons), not counted.
WARM_UP_S: Final = 2.0
#: Latency runs of the full benchmark, each way: their median is the figure. One run's p99 moved 2× from run to run
#: on the shared 2-core machine (docs/benchmarks.md, session 10), too much for a target to be read from one.
PACED_RUNS: Final = 3
#: Kept-open capacity runs of the full benchmark: the CPU target's figure and the share of the relay floor are their
#: median. One run's CPU a purchase moved by a third from run to run (691 and 918 µs an hour apart on the same code,
#: docs/benchmarks.md, session 13), too much for a target to be read from one. ``--keep-alive-only`` runs one.
CAPACITY_RUNS: Final = 3


@dataclasses.dataclass(frozen=True, slots=True)
class RelayChain:
    entry: Endpoint
    pids: tuple[int, ...]

    def cpu_s(self) -> float:
        """CPU seconds the relay processes used so far (0 where ``/proc`` cannot tell)."""
        return sum(process_cpu_s(pid) or 0.0 for pid in self.pids)


@contextlib.contextmanager
def _chain(argvs: list[list[str]], entry_port: int) -> Iterator[RelayChain]:
    """Start ``argvs`` in order (downstream first: each relay connects to the next one when it starts)."""
    processes: list[subprocess.Popen[str]] = []
    try:
        for argv in argvs:
            process = subprocess.Popen([sys.executable, "-m", "bench.relay", *argv], stdout=subprocess.PIPE, text=True)
            processes.append(process)
            assert process.stdout is not None
            process.stdout.readline()  # READY
        yield RelayChain(Endpoint(host="127.0.0.1", port=entry_port), tuple(p.pid for p in processes))
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)
            if process.stdout is not None:
                process.stdout.close()


def relay_chain(*, callbacks: bool = False) -> contextlib.AbstractContextManager[RelayChain]:
    """terminal → relay (NAC) → relay (front-end) → echo (ledger): the issue's relay floor; with ``callbacks``
    the relays and the echo run as asyncio protocol callbacks (no task per connection or frame)."""
    nac, frontend, ledger = (free_port() for _ in range(3))
    style = ["--callbacks"] if callbacks else []
    return _chain(
        [
            ["--listen", str(ledger), "--echo", *style],
            ["--listen", str(frontend), "--to", f"127.0.0.1:{ledger}", *style],
            ["--listen", str(nac), "--to", f"127.0.0.1:{frontend}", *style],
        ],
        nac,
    )


def callback_chain() -> contextlib.AbstractContextManager[RelayChain]:
    return relay_chain(callbacks=True)


def shape_chain(*, callbacks: bool = False) -> contextlib.AbstractContextManager[RelayChain]:
    """The purchase's own shape with no work: terminal → relay (NAC) → front-end relay, which exchanges each frame
    with an echo (HSM), another echo (ledger) and the first echo again before answering: five processes and ten
    frame passes, as a purchase has; with ``callbacks`` every process runs on the runtime's callback path, as the
    services do (a task per frame in the front-end relay otherwise)."""
    nac, frontend, hsm, ledger = (free_port() for _ in range(4))
    hsm_at, ledger_at = f"127.0.0.1:{hsm}", f"127.0.0.1:{ledger}"
    style = ["--callbacks"] if callbacks else []
    return _chain(
        [
            ["--listen", str(hsm), "--echo", *style],
            ["--listen", str(ledger), "--echo", *style],
            ["--listen", str(frontend), "--via", hsm_at, "--via", ledger_at, "--via", hsm_at, *style],
            ["--listen", str(nac), "--to", f"127.0.0.1:{frontend}", *style],
        ],
        nac,
    )


def callback_shape_chain() -> contextlib.AbstractContextManager[RelayChain]:
    return shape_chain(callbacks=True)


async def relay_rate(
    endpoint: Endpoint, clients: int, seconds: float, payload: bytes, *, keep_alive: bool
) -> tuple[int, float]:
    """Round trips through the relay chain, and the seconds they took: closed loop, ``clients`` at once, each
    opening a connection per round trip (as POS terminals do) or keeping one open."""
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
    return done, time.perf_counter() - start


def _run(
    config: AcqsimConfig,
    cards: tuple[CardFixture, ...],
    nac: Endpoint,
    rate: float,
    seconds: float,
    backend: str,
    options: dict[str, Any],
    *,
    keep_alive: bool = False,
) -> tuple[dict[str, Any], dict[str, float]]:
    """One open-loop run of purchases at ``rate`` for ``seconds``, terminal *t* always on card *t*: its summary,
    and CPU µs per approved purchase by process."""
    before = cpu_by_service()
    stats, elapsed = anyio.run(
        lambda: run_load(
            config,
            terminals=TERMINALS,
            schedule=OpenLoopSchedule(rate, seconds),
            mix=Mix.parse("purchase=100"),
            against=nac,
            keep_alive=keep_alive,
            cards=cards,
            spread="terminal",
        ),
        backend=backend,
        backend_options=options,
    )
    return stats.summary(elapsed), cpu_per_item(before, cpu_by_service(), stats.codes.get("00", 0))


def _median_run(runs: list[tuple[dict[str, Any], dict[str, float]]]) -> tuple[dict[str, Any], dict[str, float]]:
    """Several capacity runs as one: the median approved rate, and the CPU by process of the run whose total is the
    median (so the processes still add up to the total)."""
    by_total = sorted(runs, key=lambda run: sum(run[1].values()))
    summary, cpu = by_total[len(by_total) // 2]
    return {**summary, "approved_tps": statistics.median(run[0]["approved_tps"] for run in runs)}, cpu


def _paced_figures(prefix: str, rate: float, summaries: list[dict[str, Any]]) -> dict[str, float]:
    """The paced runs' offered rate, and the median over the runs of their approved rate and latency percentiles
    from due time, each under ``prefix``; with more than one run, the p99's least and greatest too."""

    def median(key: str) -> float:
        return float(statistics.median(summary[key] for summary in summaries))

    figures = {
        f"{prefix}rate_per_s": float(rate),
        f"{prefix}approved_per_s": median("approved_tps"),
        f"{prefix}p50_ms": median("p50_ms"),
        f"{prefix}p99_ms": median("p99_ms"),
        f"{prefix}p999_ms": median("p999_ms"),
    }
    if len(summaries) > 1:
        figures[f"{prefix}p99_ms_min"] = min(summary["p99_ms"] for summary in summaries)
        figures[f"{prefix}p99_ms_max"] = max(summary["p99_ms"] for summary in summaries)
    return figures


def _cpu_figures(prefix: str, cpu: dict[str, float]) -> dict[str, float]:
    """``<prefix>cpu_us_<process>`` for each process and ``<prefix>cpu_us_total``, when CPU was measured."""
    figures = {f"{prefix}cpu_us_{name}": micros for name, micros in sorted(cpu.items())}
    if cpu:
        figures[f"{prefix}cpu_us_total"] = sum(cpu.values())
    return figures


def _relay_floor(
    seconds: float,
    backend: str,
    options: dict[str, Any],
    *,
    keep_alive: bool,
    chain: Callable[[], contextlib.AbstractContextManager[RelayChain]] = relay_chain,
) -> tuple[float, float]:
    """Round trips per second through a relay chain, and CPU µs per round trip summed over the relays and
    the client (this process): the floor of the rate and of the CPU per purchase."""
    with chain() as relay:
        cpu_before, own_before = relay.cpu_s(), own_cpu_s()
        done, elapsed = anyio.run(
            functools.partial(relay_rate, relay.entry, TERMINALS, seconds, bytes(129), keep_alive=keep_alive),
            backend=backend,
            backend_options=options,
        )
        cpu = relay.cpu_s() - cpu_before + own_cpu_s() - own_before
    return done / elapsed, cpu * 1e6 / done if done else 0.0


def measure(seconds: float = SECONDS, *, keep_alive_only: bool = False) -> dict[str, float]:
    """Every run (capacity, paced, keep-alive, and both relay floors), or the keep-alive capacity run only."""
    backend, options = backend_options()  # as `acqsim load` runs: uvloop when installed
    cards = load_cards(AcqsimConfig.default(), TERMINALS)
    config = with_load_cards(AcqsimConfig.default(), cards)
    figures: dict[str, float] = {}
    with (
        tempfile.TemporaryDirectory(prefix="acqsim-bench-e2e-") as tmp,
        pipeline_processes(config, TERMINALS, Path(tmp)) as nac,
    ):
        if not keep_alive_only:  # on the filesystem the services write to, before any load
            durable = serial_commit_latency(Path(tmp))
            figures |= {f"durable_floor_{name}": value for name, value in durable.items()}
        if not keep_alive_only:
            capacity, cpu = _run(config, cards, nac, OFFERED_RATE, seconds, backend, options)
            paced_rate = max(round(capacity["approved_tps"] * PACED_SHARE), 1)
            paced = [_run(config, cards, nac, paced_rate, seconds, backend, options)[0] for _ in range(PACED_RUNS)]
            figures |= (
                {"approved_per_s": capacity["approved_tps"]}
                | _paced_figures("paced_", paced_rate, paced)
                | _cpu_figures("", cpu)
            )
        kept_runs = [
            _run(config, cards, nac, OFFERED_RATE, seconds, backend, options, keep_alive=True)
            for _ in range(1 if keep_alive_only else CAPACITY_RUNS)
        ]
        kept, kept_cpu = _median_run(kept_runs)
        if not keep_alive_only:
            kept_rate = max(round(kept["approved_tps"] * PACED_SHARE), 1)
            kept_paced = [
                _run(config, cards, nac, kept_rate, seconds, backend, options, keep_alive=True)[0]
                for _ in range(PACED_RUNS)
            ]
            figures |= _paced_figures("keep_alive_paced_", kept_rate, kept_paced)
    figures["keep_alive_approved_per_s"] = kept["approved_tps"]
    figures |= _cpu_figures("keep_alive_", kept_cpu)
    if len(kept_runs) > 1:
        totals = [sum(cpu.values()) for _, cpu in kept_runs]
        figures |= {"keep_alive_total_cpu_us_min": min(totals), "keep_alive_total_cpu_us_max": max(totals)}
    if keep_alive_only:
        return figures
    floor, floor_cpu = _relay_floor(seconds, backend, options, keep_alive=False)
    kept_floor, kept_floor_cpu = _relay_floor(seconds, backend, options, keep_alive=True)
    shape_floor, shape_floor_cpu = _relay_floor(seconds, backend, options, keep_alive=True, chain=shape_chain)
    callback_floor, callback_floor_cpu = _relay_floor(seconds, backend, options, keep_alive=True, chain=callback_chain)
    callback_shape, callback_shape_cpu = _relay_floor(
        seconds, backend, options, keep_alive=True, chain=callback_shape_chain
    )
    figures |= {
        "relay_floor_per_s": floor,
        "relay_floor_cpu_us": floor_cpu,
        "keep_alive_relay_floor_cpu_us": kept_floor_cpu,
        "ratio": figures["approved_per_s"] / floor if floor else 0.0,
        "keep_alive_relay_floor_per_s": kept_floor,
        "keep_alive_ratio": kept["approved_tps"] / kept_floor if kept_floor else 0.0,
        "keep_alive_shape_floor_per_s": shape_floor,
        "keep_alive_shape_floor_cpu_us": shape_floor_cpu,
        "keep_alive_callback_floor_per_s": callback_floor,
        "keep_alive_callback_floor_cpu_us": callback_floor_cpu,
        "keep_alive_callback_shape_floor_per_s": callback_shape,
        "keep_alive_callback_shape_floor_cpu_us": callback_shape_cpu,
    }
    return figures


def paced(
    rate: float, seconds: float = SECONDS, *, stages: bool = False, keep_alive: bool = False
) -> tuple[dict[str, float], list[str]]:
    """Only the paced run, at ``rate`` (terminals keeping their connection open with ``keep_alive``): its latency
    figures and — with ``stages`` (the services trace) — the stage table of its purchases (records from before the
    measured run, the warm-up's, are left out)."""
    backend, options = backend_options()
    cards = load_cards(AcqsimConfig.default(), TERMINALS)
    config = with_load_cards(AcqsimConfig.default(), cards)
    table: list[str] = []
    with tempfile.TemporaryDirectory(prefix="acqsim-bench-e2e-") as tmp:
        with pipeline_processes(config, TERMINALS, Path(tmp), trace=stages) as nac:
            _run(config, cards, nac, rate, WARM_UP_S, backend, options, keep_alive=keep_alive)
            started = dt.datetime.now(dt.UTC)
            summary, _ = _run(config, cards, nac, rate, seconds, backend, options, keep_alive=keep_alive)
        if stages:  # read once the services stopped: each wrote what it had kept when it stopped
            # imported here: `bench --compare` lays this harness over older trees, which lack the stage report
            from acqsim.tracestages import render, stage_report
            from acqsim.traceview import load_records

            table = render(stage_report(load_records(Path(tmp) / "data" / "traces"), since=started))
    return _paced_figures("paced_", rate, [summary]), table


def _cpu_line(figures: dict[str, float], prefix: str) -> str | None:
    """``frontend 1,234, nac …; total …`` (largest first) from the ``<prefix>cpu_us_*`` figures, if any."""
    key = f"{prefix}cpu_us_"
    shares = {k[len(key) :]: v for k, v in figures.items() if k.startswith(key) and k != f"{key}total"}
    if not shares:
        return None
    parts = ", ".join(f"{name} {micros:,.0f}" for name, micros in sorted(shares.items(), key=lambda kv: -kv[1]))
    return f"{parts}; total {figures[key + 'total']:,.0f}"


def _spread(figures: dict[str, float], prefix: str) -> str:
    """`` (median of N runs, p99 from … to … ms)`` when the figures are a median of several paced runs."""
    if f"{prefix}p99_ms_min" not in figures:
        return ""
    low, high = figures[f"{prefix}p99_ms_min"], figures[f"{prefix}p99_ms_max"]
    return f" (median of {PACED_RUNS} runs; p99 from {low:.1f} to {high:.1f} ms)"


def _print_full(figures: dict[str, float]) -> None:
    print(
        f"capacity: {figures['approved_per_s']:,.0f} approved purchases/s through the four services "
        f"(offered {OFFERED_RATE:,.0f}/s by {TERMINALS} terminals, PIN and MAC checked, postings durable)"
    )
    print(
        f"relay floor (3 plain hops, a connection per round trip): {figures['relay_floor_per_s']:,.0f} round trips/s"
        f" at {figures['relay_floor_cpu_us']:,.0f} µs CPU each (relays and client)"
    )
    print(f"capacity / floor: {figures['ratio']:.3f}")
    print(
        f"paced at {figures['paced_rate_per_s']:,.0f}/s ({PACED_SHARE:.0%} of capacity): "
        f"{figures['paced_approved_per_s']:,.0f} approved/s, latency from due time "
        f"p50 {figures['paced_p50_ms']:.1f} ms, p99 {figures['paced_p99_ms']:.1f} ms, "
        f"p99.9 {figures['paced_p999_ms']:.1f} ms{_spread(figures, 'paced_')}"
    )
    print(
        f"durable-commit floor (journal, ledger, journal: three fsynced commits in series, nothing else): "
        f"p50 {figures['durable_floor_p50_ms']:.1f} ms, p99 {figures['durable_floor_p99_ms']:.1f} ms, "
        f"max {figures['durable_floor_max_ms']:.1f} ms "
        f"(one commit p50 {figures['durable_floor_one_commit_p50_ms']:.1f} ms)"
    )
    if (line := _cpu_line(figures, "")) is not None:
        print(f"CPU µs per approved purchase at capacity, a connection per transaction: {line}")


def _print_keep_alive(figures: dict[str, float]) -> None:
    floor = figures.get("keep_alive_relay_floor_per_s")
    print(
        f"terminals keeping their NAC connection open (pipelined engine): "
        f"{figures['keep_alive_approved_per_s']:,.0f} approved/s"
        + (
            f"; relay floor the same way {floor:,.0f}/s at {figures['keep_alive_relay_floor_cpu_us']:,.0f} µs CPU"
            f" each; ratio {figures['keep_alive_ratio']:.3f}"
            if floor
            else ""
        )
    )
    if (line := _cpu_line(figures, "keep_alive_")) is not None:
        spread = (
            f" (the median of {CAPACITY_RUNS} runs: total from {figures['keep_alive_total_cpu_us_min']:,.0f}"
            f" to {figures['keep_alive_total_cpu_us_max']:,.0f})"
            if "keep_alive_total_cpu_us_min" in figures
            else ""
        )
        print(f"CPU µs per approved purchase at capacity, connections kept open: {line}{spread}")
    if (rate := figures.get("keep_alive_paced_rate_per_s")) is not None:
        print(
            f"paced at {rate:,.0f}/s ({PACED_SHARE:.0%} of that capacity), connections kept open: "
            f"{figures['keep_alive_paced_approved_per_s']:,.0f} approved/s, latency from due time "
            f"p50 {figures['keep_alive_paced_p50_ms']:.1f} ms, p99 {figures['keep_alive_paced_p99_ms']:.1f} ms, "
            f"p99.9 {figures['keep_alive_paced_p999_ms']:.1f} ms{_spread(figures, 'keep_alive_paced_')}"
        )
    if (shape := figures.get("keep_alive_shape_floor_per_s")) is not None:
        print(
            f"the purchase's shape with no work (NAC relay, a front-end relay exchanging with two echoes three times,"
            f" connections kept open): {shape:,.0f} round trips/s at"
            f" {figures['keep_alive_shape_floor_cpu_us']:,.0f} µs CPU each"
        )
    if (callback := figures.get("keep_alive_callback_floor_per_s")) is not None:
        print(
            f"the relay floor as asyncio protocol callbacks (no task per connection or frame): {callback:,.0f}"
            f" round trips/s at {figures['keep_alive_callback_floor_cpu_us']:,.0f} µs CPU each"
        )
    if (callback_shape := figures.get("keep_alive_callback_shape_floor_per_s")) is not None:
        print(
            f"the purchase's shape with no work, every process on the callback path as the services run:"
            f" {callback_shape:,.0f} round trips/s at"
            f" {figures['keep_alive_callback_shape_floor_cpu_us']:,.0f} µs CPU each"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_e2e", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--keep-alive-only",
        action="store_true",
        help="run only the keep-alive capacity run and print CPU µs per purchase by process (about 20 s)",
    )
    parser.add_argument(
        "--seconds", type=float, default=SECONDS, help=f"length of each load run, seconds (default {SECONDS:g})"
    )
    parser.add_argument(
        "--paced",
        type=float,
        metavar="RATE",
        help="run only the paced run, at RATE purchases/s (without it: the full run, paced at half the capacity)",
    )
    parser.add_argument(
        "--stages",
        action="store_true",
        help="with --paced: the services trace, and the run's stage table is printed (acqsim trace stages)",
    )
    parser.add_argument(
        "--keep-alive",
        action="store_true",
        help="with --paced: terminals keep their connection open (pipelined engine), as the kept-open runs do",
    )
    args = parser.parse_args(argv)
    if args.paced is not None:
        figures, table = paced(args.paced, args.seconds, stages=args.stages, keep_alive=args.keep_alive)
        print(
            f"paced at {args.paced:,.0f}/s: {figures['paced_approved_per_s']:,.0f} approved/s, latency from due time "
            f"p50 {figures['paced_p50_ms']:.1f} ms, p99 {figures['paced_p99_ms']:.1f} ms, "
            f"p99.9 {figures['paced_p999_ms']:.1f} ms"
            + (", connections kept open" if args.keep_alive else "")
            + (" (services traced)" if args.stages else "")
        )
        print("\n".join(table))
        emit(figures)
        return
    figures = measure(args.seconds, keep_alive_only=args.keep_alive_only)
    if not args.keep_alive_only:
        _print_full(figures)
    _print_keep_alive(figures)
    emit(figures)


if __name__ == "__main__":
    main()
