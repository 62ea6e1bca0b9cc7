"""``make bench``: every ``bench/bench_*.py`` in its own process (time-limited), one after the other, so the
figures of one benchmark are measured side by side within that run. Writes ``bench/results/latest.md`` and
``bench/results/latest.json`` (what each printed, with the time and the machine's core count)."""

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

TIME_LIMIT_S: Final = 300
RESULTS: Final = Path(__file__).parent / "results"


def main() -> int:
    names = sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_"))
    report: dict[str, object] = {
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "benchmarks": {},
    }
    lines = [f"# acqsim benchmarks — {report['time']} ({report['cores']} cores)", ""]
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
        report["benchmarks"][name] = {"exit": code, "seconds": round(seconds, 1), "output": output}  # type: ignore[index]
        lines += [f"## {name} ({seconds:.0f} s, exit {code})", "", "```", output.rstrip(), "```", ""]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.md").write_text("\n".join(lines), encoding="utf-8")
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"results: {RESULTS / 'latest.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
