"""The latency floor of a purchase's durable commits: three in series, as the pipeline makes them, and nothing else.

A purchase is answered only after three durable commits, one after the other: the front-end journals the request
before it asks the ledger, the ledger commits the posting before it answers, the front-end journals the answer
before it sends it. Each is a SQLite commit in WAL mode with ``synchronous=FULL`` (``acqkit.sqlitedb``, the
ledger's and the journal's own settings), so each waits for an fsync of the write-ahead log. Their sum bounds
the latency of every purchase from below, whatever the CPU does; under load a write that arrives while its
store's commit is running also waits for that one (group commit), up to one more commit a stage.

:func:`serial_commit_latency` measures exactly that on the filesystem the benchmark's services write to: a small
row committed in each of two databases (the journal's, the ledger's, the journal's again), ``samples`` times,
one purchase at a time. It is the floor beside issue 17's p99 target (``bench/report.py``).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Final

from acqkit.sqlitedb import open_durable, write_all

#: Purchases measured (each three commits).
SAMPLES: Final = 500
#: The row each commit writes: about a journal row's size.
ROW_BYTES: Final = 200
_SCHEMA: Final = "CREATE TABLE IF NOT EXISTS rows (id INTEGER PRIMARY KEY, body BLOB NOT NULL);"
_INSERT: Final = "INSERT INTO rows (body) VALUES (?)"


def serial_commit_latency(directory: Path, *, samples: int = SAMPLES) -> dict[str, float]:
    """p50, p99 and max (ms) of three durable commits in series (journal, ledger, journal), and the p50 of one
    commit alone, on ``directory``'s filesystem."""
    journal = open_durable(str(directory / "floor-journal.sqlite3"), _SCHEMA)
    ledger = open_durable(str(directory / "floor-ledger.sqlite3"), _SCHEMA)
    body = bytes(ROW_BYTES)
    row = [(_INSERT, (body,))]
    try:
        for db in (journal, ledger):  # the first commits create the WAL files: not part of the figure
            write_all(db, row)
        three: list[float] = []
        one: list[float] = []
        for _ in range(samples):
            start = time.perf_counter()
            write_all(journal, row)
            first = time.perf_counter()
            write_all(ledger, row)
            write_all(journal, row)
            end = time.perf_counter()
            three.append((end - start) * 1e3)
            one.append((first - start) * 1e3)
    finally:
        journal.close()
        ledger.close()
    cuts = statistics.quantiles(three, n=100, method="inclusive")
    return {
        "p50_ms": statistics.median(three),
        "p99_ms": cuts[98],
        "max_ms": max(three),
        "one_commit_p50_ms": statistics.median(one),
    }
