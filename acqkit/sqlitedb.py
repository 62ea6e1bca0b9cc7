"""A durable SQLite database as the small services' stores use it (the wallet host, the merchant platform):
opened once, WAL with synchronous=FULL (a commit that returned survives a power cut), and each decision's rows
written in one transaction, all or none. Blocking calls: the services run them in a worker thread."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final

#: How long a writer waits for another connection's lock before SQLite reports the database busy.
BUSY_TIMEOUT_MS: Final = 10_000

#: One statement and its parameters.
Row = tuple[str, Sequence[object]]


def open_durable(path: str, schema: str) -> sqlite3.Connection:
    """The database at ``path`` (``:memory:`` for tests), its folder created and ``schema`` applied."""
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.executescript(schema)
    return db


def write_all(db: sqlite3.Connection, rows: Iterable[Row]) -> None:
    """Execute ``rows`` in one IMMEDIATE transaction: every row, or none if any fails."""
    db.execute("BEGIN IMMEDIATE")
    try:
        for statement, parameters in rows:
            db.execute(statement, parameters)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
