"""Traces on against traces off: what leaving the services' traces on costs (issue 17: at most 10 %).

bench_e2e's keep-alive capacity run (``acqsim up`` as processes, 32 load terminals keeping their NAC connection
open, each on a card of its own, purchases offered above capacity) on a fresh pipeline with traces off, then
on one with traces on (every service writes its trace: NAC, front-end, HSM, ledger), alternated ``ROUNDS``
times so the machine's drift weighs on both; medians compared. ``trace_on_cpu_overhead`` is CPU µs per
approved purchase, all processes, on / off − 1; ``trace_on_rate_ratio`` the capacity on / off;
``trace_records_per_purchase`` how many trace records a purchase left (a check that the traces were written).

At capacity the traced side also serves fewer purchases a second, so each purchase carries a larger share of
every process's fixed costs (wake-ups that find fewer frames each): the capacity figure holds that against
traces too. So each pipeline then also runs ``PACED_RATE`` purchases/s, the same offer on both sides, and
``trace_on_paced_cpu_overhead`` is the CPU per purchase of those runs on / off − 1: what traces cost at a given
load.

``python -m bench.bench_traces [--rounds N] [--seconds S]``: about 25 s a run (most of it starting services).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path
from typing import Final

from acqkit.config import AcqsimConfig
from acqkit.runner import backend_options
from acqsim.processes import StartupError, pipeline_processes
from bench.bench_e2e import OFFERED_RATE, TERMINALS, _run
from bench.report import emit
from terminal.load.runner import load_cards, with_load_cards
from wire.trace import read_trace

SECONDS: Final = 5.0
#: The offered rate of the second run on each pipeline: the same for both sides, below either's capacity here.
PACED_RATE: Final = 400.0
ROUNDS: Final = 2
MODES: Final = {"off": False, "on": True}


def run_once(trace: bool, seconds: float) -> tuple[float, dict[str, float], float, float]:
    """Approved purchases/s, CPU µs per approved purchase by process, trace records written a purchase, and the CPU µs
    per approved purchase (all processes) at ``PACED_RATE``; tried once more if the services did not start (a
    free port taken meanwhile by another process of the machine)."""
    try:
        return _run_once(trace, seconds)
    except StartupError as exc:
        print(f"the services did not start, once more: {exc.output.splitlines()[-1:]}", flush=True)
        return _run_once(trace, seconds)


def _run_once(trace: bool, seconds: float) -> tuple[float, dict[str, float], float, float]:
    backend, options = backend_options()
    cards = load_cards(AcqsimConfig.default(), TERMINALS)
    config = with_load_cards(AcqsimConfig.default(), cards)
    with tempfile.TemporaryDirectory(prefix="acqsim-bench-traces-") as tmp:
        with pipeline_processes(config, TERMINALS, Path(tmp), trace=trace) as nac:
            summary, cpu = _run(config, cards, nac, OFFERED_RATE, seconds, backend, options, keep_alive=True)
            paced, paced_cpu = _run(config, cards, nac, PACED_RATE, seconds, backend, options, keep_alive=True)
        # read once the services stopped: each wrote what it had kept when it stopped
        records = sum(len(read_trace(path)) for path in (Path(tmp) / "data" / "traces").glob("*.jsonl"))
    purchases = (summary["approved_tps"] + paced["approved_tps"]) * seconds
    return summary["approved_tps"], cpu, records / purchases if purchases else 0.0, sum(paced_cpu.values())


def measure(seconds: float = SECONDS, rounds: int = ROUNDS) -> dict[str, float]:
    rates: dict[str, list[float]] = {mode: [] for mode in MODES}
    totals: dict[str, list[float]] = {mode: [] for mode in MODES}
    paced: dict[str, list[float]] = {mode: [] for mode in MODES}
    by_process: dict[str, dict[str, list[float]]] = {mode: {} for mode in MODES}
    records_per_purchase: list[float] = []
    for _round in range(rounds):
        for mode, trace in MODES.items():
            rate, cpu, records, paced_cpu = run_once(trace, seconds)
            rates[mode].append(rate)
            paced[mode].append(paced_cpu)
            totals[mode].append(sum(cpu.values()))
            for process, micros in cpu.items():
                by_process[mode].setdefault(process, []).append(micros)
            if trace:
                records_per_purchase.append(records)
            print(f"traces {mode}: {rate:,.0f} approved/s, {sum(cpu.values()):,.0f} µs CPU a purchase", flush=True)
    figures: dict[str, float] = {}
    for mode in MODES:
        figures[f"trace_{mode}_approved_per_s"] = statistics.median(rates[mode])
        figures[f"trace_{mode}_cpu_us_total"] = statistics.median(totals[mode])
        figures[f"trace_{mode}_paced_cpu_us_total"] = statistics.median(paced[mode])
        for process, values in sorted(by_process[mode].items()):
            figures[f"trace_{mode}_cpu_us_{process}"] = statistics.median(values)
    off_cpu, off_rate = figures["trace_off_cpu_us_total"], figures["trace_off_approved_per_s"]
    figures["trace_on_cpu_overhead"] = figures["trace_on_cpu_us_total"] / off_cpu - 1 if off_cpu else 0.0
    paced_off = figures["trace_off_paced_cpu_us_total"]
    figures["trace_on_paced_cpu_overhead"] = (
        figures["trace_on_paced_cpu_us_total"] / paced_off - 1 if paced_off else 0.0
    )
    figures["trace_on_rate_ratio"] = figures["trace_on_approved_per_s"] / off_rate if off_rate else 0.0
    if records_per_purchase:
        figures["trace_records_per_purchase"] = statistics.median(records_per_purchase)
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_traces", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS, help=f"off/on pairs to run (default {ROUNDS})")
    parser.add_argument(
        "--seconds", type=float, default=SECONDS, help=f"length of each load run, seconds (default {SECONDS:g})"
    )
    args = parser.parse_args(argv)
    figures = measure(args.seconds, args.rounds)
    processes = sorted(k.removeprefix("trace_on_cpu_us_") for k in figures if k.startswith("trace_on_cpu_us_"))
    for process in processes:
        off, on = figures.get(f"trace_off_cpu_us_{process}", 0.0), figures[f"trace_on_cpu_us_{process}"]
        print(f"  {process:<8} off {off:7,.0f} µs   on {on:7,.0f} µs")
    print(
        f"traces on cost {figures['trace_on_cpu_overhead']:+.1%} CPU per approved purchase (all processes; target "
        f"≤ +10 %), capacity on/off {figures['trace_on_rate_ratio']:.3f}, "
        f"{figures.get('trace_records_per_purchase', 0):.1f} records a purchase; at {PACED_RATE:,.0f}/s offered "
        f"to both: {figures['trace_on_paced_cpu_overhead']:+.1%}"
    )
    emit(figures)


if __name__ == "__main__":
    main()
