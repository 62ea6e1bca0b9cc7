"""``make bench``: every ``bench/bench_*.py`` in its own process (time-limited), one after the other, so the
figures of one benchmark are measured side by side within that run. Writes ``bench/results/latest.md`` (issue
17's targets beside what was measured and its floor, then one table of every benchmark's figures, then what
each printed) and ``bench/results/latest.json`` (the same, with the time and the machine's core count). How to
read them: docs/benchmarks.md.

``python -m bench --compare REV`` runs chosen benchmarks of REV and of this tree alternately instead
(``bench/compare.py``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import pkgutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Final

import bench
from bench.compare import HARNESSES, CompareError, compare
from bench.report import Figures, parse, target_rows, targets_table

TIME_LIMIT_S: Final = 300
RESULTS: Final = Path(__file__).parent / "results"


def benchmark_names() -> list[str]:
    """Every ``bench_*`` module of this package, sorted."""
    return sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_"))


def run_benchmark(name: str, argv: list[str] | None = None, *, cwd: Path | None = None) -> tuple[str, int, float]:
    """Run ``bench.<name>`` in a process of its own (``cwd``: the tree to run it from): what it printed, its exit
    code (-1 after ``TIME_LIMIT_S``) and its seconds."""
    start = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, "-m", f"bench.{name}", *(argv or [])],
            capture_output=True,
            text=True,
            timeout=TIME_LIMIT_S,
            check=False,
            cwd=cwd,
        )
        output, code = done.stdout + done.stderr, done.returncode
    except subprocess.TimeoutExpired:
        output, code = f"timed out after {TIME_LIMIT_S} s", -1
    return output, code, time.perf_counter() - start


def _number(value: object) -> str:
    return f"{value:,.3f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)


def run_all(names: list[str]) -> int:
    """Run ``names`` one after the other and write the results; 1 if any failed."""
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    entries: dict[str, dict[str, object]] = {}
    figures_by_benchmark: dict[str, Figures] = {}
    table = ["| benchmark | figure | value |", "|---|---|---:|"]
    sections: list[str] = []
    failed = False
    for name in names:
        print(f"== {name}", flush=True)
        output, code, seconds = run_benchmark(name)
        failed |= code != 0
        print(output, flush=True)
        figures = figures_by_benchmark[name] = parse(output)
        entries[name] = {"exit": code, "seconds": round(seconds, 1), "figures": figures, "output": output}
        table += [f"| {name} | {key} | {_number(value)} |" for key, value in figures.items()]
        if code != 0:
            table.append(f"| {name} | exit code | {code} |")
        sections += [f"## {name} ({seconds:.0f} s, exit {code})", "", "```", output.rstrip(), "```", ""]
    report = {
        "time": started,
        "cores": os.cpu_count(),
        "targets": target_rows(figures_by_benchmark),
        "benchmarks": entries,
    }
    lines = [
        f"# acqsim benchmarks — {started} ({os.cpu_count()} cores)",
        "",
        *targets_table(figures_by_benchmark),
        "## Every figure",
        "",
        *table,
        "",
        *sections,
    ]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.md").write_text("\n".join(lines), encoding="utf-8")
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    print("\n".join(targets_table(figures_by_benchmark)))
    print(f"results: {RESULTS / 'latest.md'}")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only",
        metavar="NAMES",
        help="comma-separated benchmarks to run (e.g. bench_e2e,bench_loadgen); default every bench_*.py",
    )
    parser.add_argument(
        "--compare", metavar="REV", help="run the benchmarks of REV and of this tree alternately (bench/compare.py)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="with --compare: old/new pairs to run (default 3)")
    parser.add_argument(
        "--args",
        default="",
        help="with --compare: arguments for each benchmark, as one string (e.g. --args=--keep-alive-only)",
    )
    parser.add_argument(
        "--harness",
        choices=HARNESSES,
        default="current",
        help="with --compare: run this tree's benchmarks against both trees' code (current, the default), or each "
        "tree's own benchmarks (own: when REV lacks an API this tree's benchmarks use)",
    )
    args = parser.parse_args(argv)
    names = benchmark_names()
    if args.only:
        wanted = args.only.split(",")
        unknown = sorted(set(wanted) - set(names))
        if unknown:
            parser.error(f"no such benchmark: {', '.join(unknown)} (there are {', '.join(names)})")
        names = wanted
    if args.compare:
        try:
            return compare(args.compare, names, rounds=args.rounds, bench_args=args.args.split(), harness=args.harness)
        except CompareError as exc:
            print(f"bench --compare: {exc}", file=sys.stderr)
            return 2
    return run_all(names)


if __name__ == "__main__":
    sys.exit(main())
