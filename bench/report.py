"""How a benchmark hands its figures to ``make bench`` (one ``FIGURES {json}`` line, after its own text), and
issue 17's targets held against those figures: the "Targets" table ``bench/results/latest.md`` opens with."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from typing import Final

FIGURES_PREFIX: Final = "FIGURES "

Figures = Mapping[str, float | int | str]


def emit(figures: Figures) -> None:
    """Print the figures (rounded for reading) as the line ``bench/__main__.py`` collects into the table."""
    rounded = {k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()}
    print(FIGURES_PREFIX + json.dumps(rounded), flush=True)


def parse(output: str) -> dict[str, float | int | str]:
    """The figures a benchmark printed, or an empty mapping if it printed none."""
    for line in output.splitlines():
        if line.startswith(FIGURES_PREFIX):
            figures: dict[str, float | int | str] = json.loads(line[len(FIGURES_PREFIX) :])
            return figures
    return {}


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """One target of issue 17: ``figure`` of ``benchmark`` must be at most (``at_most``) or at least ``limit``;
    ``floor`` is the figure measured beside it in the same run that bounds what it could be (or ``None``)."""

    name: str
    benchmark: str
    figure: str
    limit: float
    at_most: bool
    unit: str
    floor: str | None = None
    floor_unit: str | None = None  # when the floor is in other units than the figure

    def measured(self, benchmarks: Mapping[str, Figures]) -> float | None:
        return _number(benchmarks.get(self.benchmark, {}).get(self.figure))

    def floor_value(self, benchmarks: Mapping[str, Figures]) -> float | None:
        return None if self.floor is None else _number(benchmarks.get(self.benchmark, {}).get(self.floor))

    def met(self, value: float) -> bool:
        return value <= self.limit if self.at_most else value >= self.limit


#: Issue 17's targets, in its order. The CPU floors are the relay chain's CPU per round trip (the same hops,
#: plain relays, no work); the rate floor is the relay chain's rate; the load generator's floor is a raw client
#: against a plain echo; the memory floor is the load generator's process before its terminals.
TARGETS: Final = (
    Target(
        name="CPU per approved purchase, all processes, connections kept open",
        benchmark="bench_e2e",
        figure="keep_alive_cpu_us_total",
        limit=600,
        at_most=True,
        unit="µs",
        floor="keep_alive_relay_floor_cpu_us",
    ),
    Target(
        name="CPU per approved purchase, all processes, a connection per transaction",
        benchmark="bench_e2e",
        figure="cpu_us_total",
        limit=1200,
        at_most=True,
        unit="µs",
        floor="relay_floor_cpu_us",
    ),
    Target(
        name="end to end, connections kept open: share of the relay floor",
        benchmark="bench_e2e",
        figure="keep_alive_ratio",
        limit=0.20,
        at_most=False,
        unit="",
        floor="keep_alive_relay_floor_per_s",
        floor_unit="/s",
    ),
    Target(
        name="p99 latency, connections kept open, offered half their measured capacity (median of 3 runs)",
        benchmark="bench_e2e",
        figure="keep_alive_paced_p99_ms",
        limit=20,
        at_most=True,
        unit="ms",
        floor="durable_floor_p99_ms",
    ),
    Target(
        name="the same, a connection per transaction, offered half its measured capacity (median of 3 runs)",
        benchmark="bench_e2e",
        figure="paced_p99_ms",
        limit=20,
        at_most=True,
        unit="ms",
        floor="durable_floor_p99_ms",
    ),
    Target(
        name="load generator vs echo host, purchases per CPU-second",
        benchmark="bench_loadgen",
        figure="purchases_per_cpu_s",
        limit=10_000,
        at_most=False,
        unit="/s",
        floor="floor_per_cpu_s",
    ),
    Target(
        name="10,000 idle signed-on terminals, load generator RSS",
        benchmark="bench_loadgen",
        figure="idle_rss_mb",
        limit=160,
        at_most=True,
        unit="MB",
        floor="idle_rss_before_mb",
    ),
    Target(
        name="leaving traces on: extra CPU per approved purchase, all processes (on / off - 1)",
        benchmark="bench_traces",
        figure="trace_on_cpu_overhead",
        limit=0.10,
        at_most=True,
        unit="",
        floor="trace_off_cpu_us_total",
        floor_unit="µs",
    ),
)
#: What the floor column holds for each target (a line under the table says it).
FLOOR_NOTE: Final = (
    "Floor, measured in the same run: for CPU, the relay chain's CPU per round trip (the same hops, plain relays, "
    "no work); for the share, the relay chain's round trips per second (connections kept open); for the load "
    "generator, a raw client against a plain echo; for the p99, three durable (fsynced) commits in series on the "
    "services' filesystem, the journal's, the ledger's and the journal's again (bench/durablefloor.py); for "
    "memory, the load generator before its terminals; for traces, the CPU per purchase with traces off."
)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return None
    return float(value)


def _show(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.3g}"
    return f"{text} {unit}".rstrip()


def target_rows(benchmarks: Mapping[str, Figures]) -> list[dict[str, object]]:
    """Each target with its measured and floor figures and whether it is met (``None``: not measured), for
    ``latest.json``."""
    rows: list[dict[str, object]] = []
    for target in TARGETS:
        value = target.measured(benchmarks)
        rows.append(
            {
                "target": target.name,
                "figure": f"{target.benchmark}.{target.figure}",
                "limit": target.limit,
                "at_most": target.at_most,
                "unit": target.unit,
                "measured": value,
                "floor": target.floor_value(benchmarks),
                "met": None if value is None else target.met(value),
            }
        )
    return rows


def targets_table(benchmarks: Mapping[str, Figures]) -> list[str]:
    """The "Targets" section of ``latest.md``: target, limit, measured, floor, met — one row per target."""
    lines = ["## Targets (issue 17)", "", "| target | limit | measured | floor | met |", "|---|---:|---:|---:|---|"]
    for target in TARGETS:
        value = target.measured(benchmarks)
        limit = ("≤ " if target.at_most else "≥ ") + _show(target.limit, target.unit)
        floor = _show(target.floor_value(benchmarks), target.floor_unit or target.unit)
        met = "not measured" if value is None else "yes" if target.met(value) else "no"
        lines.append(
            f"| {target.name} (`{target.benchmark}.{target.figure}`) | {limit} | {_show(value, target.unit)} | "
            f"{floor} | {met} |"
        )
    return [*lines, "", FLOOR_NOTE, ""]
