"""The benchmark reports: issue 17's targets table and the before/after table (pure functions, no runs)."""

from __future__ import annotations

import pytest

from bench.compare import compare_table
from bench.report import TARGETS, emit, parse, target_rows, targets_table


def test_targets_table_says_met_not_met_and_not_measured() -> None:
    benchmarks = {
        "bench_e2e": {"keep_alive_cpu_us_total": 550.0, "keep_alive_relay_floor_cpu_us": 120.0, "cpu_us_total": 4000.0},
        "bench_loadgen": {"purchases_per_cpu_s": 9_999.0, "floor_per_cpu_s": 300_000.0},
    }
    rows = {row["figure"]: row for row in target_rows(benchmarks)}
    assert rows["bench_e2e.keep_alive_cpu_us_total"]["met"] is True  # ≤ 600
    assert rows["bench_e2e.keep_alive_cpu_us_total"]["floor"] == 120.0
    assert rows["bench_e2e.cpu_us_total"]["met"] is False  # > 1,200
    assert rows["bench_loadgen.purchases_per_cpu_s"]["met"] is False  # < 10,000
    assert rows["bench_loadgen.idle_rss_mb"]["met"] is None  # not in the figures
    table = targets_table(benchmarks)
    body = [line for line in table if line.startswith("| ") and "`" in line]
    assert len(body) == len(TARGETS)
    assert body[0].endswith("| 550 µs | 120 µs | yes |")
    assert body[5].endswith("| 9,999 /s | 300,000 /s | no |")
    assert body[6].endswith("| — | — | not measured |")


def test_figures_round_trip_through_the_output(capsys: pytest.CaptureFixture[str]) -> None:
    emit({"a_per_s": 1234.56789, "name": "x"})
    output = capsys.readouterr().out
    assert parse("some text\n" + output) == {"a_per_s": 1234.568, "name": "x"}


def test_compare_table_gives_median_min_max_and_ratio() -> None:
    runs = {
        "bench_e2e": {
            "old": [{"rate": 100.0, "only_old": 1.0}, {"rate": 300.0}, {"rate": 200.0}],
            "new": [{"rate": 400.0, "only_new": 2.0}, {"rate": 500.0}, {"rate": 600.0}],
        }
    }
    lines = compare_table(runs)
    assert "| rate | 200 (100–300) | 500 (400–600) | 2.50 |" in lines
    assert not any("only_" in line for line in lines)  # a figure of one side only has nothing to compare
