"""A durable SQLite database as the small services' stores use it (the wallet host, the merchant platform):
opened once, WAL with synchronous=FULL (a commit that returned survives a power cut), and each decision's rows
written in one transaction, all or none. Blocking calls: the services run them in a worker thread."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import ClassVar, Final, TypeVar

#: How long a writer waits for another connection's lock before SQLite reports the database busy.
BUSY_TIMEOUT_MS: Final = 10_000

T = TypeVar("T")

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


class DurableStore:
    """A small service's store on one durable database: opened once, written one decision at a time (all rows
    or none), read under the same lock. A subclass names its ``kind`` (for errors), ``schema`` and ``error``."""

    kind: ClassVar[str] = "store"
    schema: ClassVar[str] = ""
    error: ClassVar[type[Exception]] = Exception

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        try:
            self._db = open_durable(self.path, self.schema)
        except sqlite3.Error as exc:
            raise self._failed("open", exc) from None
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    def write(self, rows: Iterable[Row]) -> None:
        """``rows`` in one transaction (all or none). Blocking: the service runs it in a worker thread."""
        with self._lock:
            try:
                write_all(self._db, rows)
            except sqlite3.Error as exc:
                raise self._failed("write", exc) from None

    def read(self, load: Callable[[sqlite3.Connection], T]) -> T:
        """What ``load`` reads from the database, under the store's lock."""
        with self._lock:
            try:
                return load(self._db)
            except sqlite3.Error as exc:
                raise self._failed("read", exc) from None

    def _failed(self, action: str, exc: sqlite3.Error) -> Exception:
        return self.error(f"cannot {action} {self.kind} {self.path}: {exc}")
