"""``make bench``: every ``bench/bench_*.py`` in its own process (time-limited), one after the other, so the
figures of one benchmark are measured side by side within that run. Writes ``bench/results/latest.md`` (one
table of every benchmark's figures, then what each printed) and ``bench/results/latest.json`` (the same, with
the time and the machine's core count). How to read them: docs/benchmarks.md."""

from __future__ import annotations

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
from bench.report import parse

TIME_LIMIT_S: Final = 300
RESULTS: Final = Path(__file__).parent / "results"


def _number(value: object) -> str:
    return f"{value:,.3f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)


def main() -> int:
    names = sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_"))
    report: dict[str, object] = {
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "benchmarks": {},
    }
    table = ["| benchmark | figure | value |", "|---|---|---:|"]
    sections: list[str] = []
    failed = False
    for name in names:
        print(f"== {name}", flush=True)
        start = time.perf_counter()
        try:
            done = subprocess.run(
                [sys.executable, "-m", f"bench.{name}"],
                capture_output=True,
                text=True,
                timeout=TIME_LIMIT_S,
                check=False,
            )
            output, code = done.stdout + done.stderr, done.returncode
        except subprocess.TimeoutExpired:
            output, code = f"timed out after {TIME_LIMIT_S} s", -1
        failed |= code != 0
        seconds = time.perf_counter() - start
        print(output, flush=True)
        figures = parse(output)
        report["benchmarks"][name] = {  # type: ignore[index]
            "exit": code,
            "seconds": round(seconds, 1),
            "figures": figures,
            "output": output,
        }
        table += [f"| {name} | {key} | {_number(value)} |" for key, value in figures.items()]
        if code != 0:
            table.append(f"| {name} | exit code | {code} |")
        sections += [f"## {name} ({seconds:.0f} s, exit {code})", "", "```", output.rstrip(), "```", ""]
    lines = [f"# acqsim benchmarks — {report['time']} ({report['cores']} cores)", "", *table, "", *sections]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.md").write_text("\n".join(lines), encoding="utf-8")
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"results: {RESULTS / 'latest.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
