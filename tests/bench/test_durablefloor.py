"""The durable-commit floor commits for real: every sample's three rows are in the two databases, and the
figures are ordered as latencies of the same runs must be."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bench.durablefloor import serial_commit_latency


def test_three_durable_commits_a_sample_and_ordered_figures(tmp_path: Path) -> None:
    figures = serial_commit_latency(tmp_path, samples=5)
    assert 0 < figures["one_commit_p50_ms"] <= figures["max_ms"]
    assert 0 < figures["p50_ms"] <= figures["p99_ms"] <= figures["max_ms"]
    counts = {}
    for name in ("journal", "ledger"):
        with sqlite3.connect(tmp_path / f"floor-{name}.sqlite3") as db:
            counts[name] = db.execute("SELECT count(*) FROM rows").fetchone()[0]
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert counts == {"journal": 1 + 2 * 5, "ledger": 1 + 5}  # a warm-up commit each, then 2 + 1 a sample
