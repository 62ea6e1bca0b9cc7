"""SQLite backend: WAL journal, ``synchronous=FULL`` (a commit survives power loss), one writer.

One ledger process serves one database file; the offline tools (check, statement, settle) may open it at
the same time (WAL readers never block; writers wait up to ``BUSY_TIMEOUT_MS``). Calls are blocking: the
server runs them in a worker thread.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final
from urllib.request import pathname2url

from core_ledger.model import Txn
from core_ledger.sql import effect_statement, load_state
from core_ledger.state import LedgerState
from core_ledger.store import (
    ADD_TO_COUNTER,
    CARD_COLUMNS,
    COUNTER_TOTAL,
    COUNTERS_TABLE,
    MERCHANT_COLUMNS,
    TXN_COLUMN_COUNT,
    TXN_COLUMNS,
    Posting,
    StoredEntry,
    StoreError,
    account_deltas,
    added_column_statements,
    check_schema,
    counter_deltas,
    counters_of_stored_effects,
    entry_owner,
    read_rows_retrying,
    ref_day_bounds,
    txn_from_row,
    txn_row,
)

#: How long a writer waits for another process's write transaction to end.
BUSY_TIMEOUT_MS: Final = 10_000
#: How long a read on the event loop (a transaction no longer in memory) may wait for a lock: it blocks the loop.
READ_BUSY_TIMEOUT_MS: Final = 500
#: The settings :meth:`SqliteStore.setting` may be asked for.
STATED_PRAGMAS: Final = frozenset({"journal_mode", "synchronous", "foreign_keys", "busy_timeout"})

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS accounts (account_id TEXT PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL,
    balance INTEGER NOT NULL DEFAULT 0, held INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS cards (pan TEXT PRIMARY KEY, account_id TEXT NOT NULL REFERENCES accounts,
    expiry TEXT NOT NULL, status TEXT NOT NULL, daily_limit INTEGER);
CREATE TABLE IF NOT EXISTS merchants (merchant_id TEXT PRIMARY KEY, name TEXT NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts, settlement TEXT NOT NULL, aggregator_account_id TEXT,
    fee_bp INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS txns (seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE, op TEXT NOT NULL,
    pan TEXT NOT NULL, amount INTEGER NOT NULL, terminal_id TEXT NOT NULL, merchant_id TEXT NOT NULL,
    business_date TEXT NOT NULL, rrn TEXT NOT NULL, fingerprint TEXT NOT NULL, answer TEXT NOT NULL,
    status TEXT NOT NULL, original TEXT, auth_code TEXT, refunded INTEGER NOT NULL, effects TEXT NOT NULL,
    settled INTEGER NOT NULL, ref TEXT NOT NULL, forced INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS txns_by_ref ON txns (ref);
CREATE TABLE IF NOT EXISTS entries (seq INTEGER PRIMARY KEY AUTOINCREMENT, txn_key TEXT NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts, amount INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS entries_by_account ON entries (account_id);
CREATE TABLE IF NOT EXISTS holds (owner TEXT PRIMARY KEY, account_id TEXT NOT NULL, amount INTEGER NOT NULL);
"""


#: Indexes that stores written by an older acqsim carry and no query uses: each cost every posting a write (a
#: b-tree leaf, a WAL frame a commit). Dropped when such a store is opened. ``txns_by_rrn``: a transaction is
#: found by its key (acquirer and RRN, the UNIQUE index), never by its RRN alone.
UNUSED_INDEXES: Final = ("txns_by_rrn",)

#: The statement that records a new transaction.
INSERT_TXN: Final = f"INSERT INTO txns ({TXN_COLUMNS}) VALUES ({','.join('?' * TXN_COLUMN_COUNT)})"  # noqa: S608


def effect_runs(batch: Sequence[Posting]) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """The statements that store ``batch``'s effects, in order, with runs of the same statement merged (one
    ``executemany`` each): a batch of purchases is one run of entry inserts."""
    runs: list[tuple[str, list[tuple[Any, ...]]]] = []
    for records, effects in batch:
        owner = entry_owner(records)
        for effect in effects:
            statement = effect_statement(owner, effect)
            if statement is None:
                continue
            sql, params = statement
            if runs and runs[-1][0] == sql:
                runs[-1][1].append(params)
            else:
                runs.append((sql, [params]))
    return runs


class SqliteStore:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            columns = [str(row[0]) for row in self._db.execute("SELECT name FROM pragma_table_info('txns')")]
            try:
                check_schema(self.path, columns)
            except StoreError:
                self._db.close()
                raise
            self._db.executescript(SCHEMA)
            for statement in added_column_statements(columns):
                self._db.execute(statement)
            self._drop_unused_indexes()
            self._add_counters()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open ledger store {self.path}: {exc}") from None
        self._lock = threading.Lock()
        self._reads: sqlite3.Connection | None = None  # the history's read connection, opened on first use

    def _drop_unused_indexes(self) -> None:
        """Drop :data:`UNUSED_INDEXES` where present; looked up first, as ``DROP INDEX IF EXISTS`` takes the write
        lock even when there is nothing to drop (an offline tool beside a serving ledger must not wait for it)."""
        for name in UNUSED_INDEXES:
            if self._db.execute("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?", (name,)).fetchone():
                self._db.execute(f"DROP INDEX IF EXISTS {name}")

    def _add_counters(self) -> None:
        """Create ``card_counters`` if the store has none yet, filled from the transactions already stored (a
        store written by an older acqsim), in one transaction: never a table without its counts. A store that has
        it is opened without taking the write lock (an offline tool beside a serving ledger never waits for it)."""
        db = self._db
        if self._has_counters():
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            if not self._has_counters():  # another process may have made it meanwhile
                db.execute(COUNTERS_TABLE)
                db.executemany(ADD_TO_COUNTER, counters_of_stored_effects(db.execute("SELECT effects FROM txns")))
            db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise

    def _has_counters(self) -> bool:
        found = self._db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'card_counters'")
        return found.fetchone() is not None

    def close(self) -> None:
        self._drop_reader()
        self._db.close()

    def _read_rows(self, sql: str, params: Sequence[Any]) -> Sequence[Sequence[Any]]:
        """Rows read on a read-only connection of their own (WAL: never waiting for the writer's commit), opened
        afresh once if it fails; an in-memory database has only the one connection, so there it waits for the
        writer's lock."""

        def read() -> list[Any]:
            if self.path == ":memory:":
                with self._lock:
                    return self._db.execute(sql, params).fetchall()
            return self._reader().execute(sql, params).fetchall()

        return read_rows_retrying(
            read,
            reset=self._drop_reader,
            errors=sqlite3.Error,
            failure=lambda exc: StoreError(f"cannot read ledger store {self.path}: {exc}"),
        )

    def _reader(self) -> sqlite3.Connection:
        if self._reads is None:
            uri = f"file:{pathname2url(self.path)}?mode=ro"  # a file moved away is an error, not a new database
            self._reads = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            self._reads.execute(f"PRAGMA busy_timeout={READ_BUSY_TIMEOUT_MS}")
        return self._reads

    def _drop_reader(self) -> None:
        reads, self._reads = self._reads, None
        if reads is not None:
            with contextlib.suppress(sqlite3.Error):
                reads.close()

    def txns_by_key(self, keys: Sequence[str]) -> list[Txn]:
        marks = ",".join("?" * len(keys))
        rows = self._read_rows(f"SELECT {TXN_COLUMNS} FROM txns WHERE key IN ({marks})", keys)  # noqa: S608
        return [txn_from_row(row) for row in rows]

    def txns_by_ref_day(self, day: str) -> list[Txn]:
        sql = f"SELECT {TXN_COLUMNS} FROM txns WHERE ref >= ? AND ref < ? ORDER BY seq"  # noqa: S608
        return [txn_from_row(row) for row in self._read_rows(sql, ref_day_bounds(day))]

    def counter_total(self, kind: str, pan: str, day: str) -> int | None:
        rows = self._read_rows(COUNTER_TOTAL, (pan, day, kind))
        return int(rows[0][0]) if rows else None

    def setting(self, name: str) -> str:
        """A durability setting of the ledger's connection (``PRAGMA name``): ``journal_mode`` is ``wal``,
        ``synchronous`` is ``2`` (FULL)."""
        if name not in STATED_PRAGMAS:
            raise ValueError(f"not a ledger durability setting: {name!r}")
        with self._lock:
            row = self._db.execute(f"PRAGMA {name}").fetchone()  # name is from the allow-list above
        return str(row[0]) if row else ""

    def load(self, *, keep: int | None = None) -> LedgerState:
        with self._lock:
            try:
                self._db.execute("BEGIN")  # one consistent snapshot across the tables
                try:
                    state = load_state(self._db.execute, keep=keep)
                    state.txns.reader = state.daily.reader = state.pin_failures.reader = self
                    return state
                finally:
                    self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot read ledger store {self.path}: {exc}") from None

    def save_static(self, state: LedgerState) -> None:
        with self._lock:
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
                db.executemany(
                    "INSERT OR IGNORE INTO accounts (account_id, kind, name) VALUES (?, ?, ?)",
                    [(a.account_id, a.kind.value, a.name) for a in state.accounts.values()],
                )
                db.executemany(
                    f"INSERT OR REPLACE INTO cards ({CARD_COLUMNS}) VALUES (?, ?, ?, ?, ?)",  # noqa: S608
                    [(c.pan, c.account_id, c.expiry, c.status.value, c.daily_limit) for c in state.cards.values()],
                )
                db.executemany(
                    f"INSERT OR REPLACE INTO merchants ({MERCHANT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",  # noqa: S608
                    [
                        (m.merchant_id, m.name, m.account_id, m.settlement, m.aggregator_account_id, m.fee_bp)
                        for m in state.merchants.values()
                    ],
                )
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                raise StoreError(f"cannot write ledger store {self.path}: {exc}") from None

    def commit(self, batch: Sequence[Posting], *, settled: Sequence[str] = ()) -> None:
        with self._lock:
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
                # Every new transaction first, in order, then every effect in order: an effect only ever names
                # a transaction recorded before it (in an earlier batch, or earlier in this one), so the rows
                # come out as a posting-by-posting loop would write them, in a few executemany calls.
                db.executemany(INSERT_TXN, [txn_row(txn) for records, _ in batch for txn in records])
                for sql, rows in effect_runs(batch):
                    db.executemany(sql, rows)
                db.executemany(
                    "UPDATE accounts SET balance = balance + ?, held = held + ? WHERE account_id = ?",
                    [(b, h, a) for a, (b, h) in account_deltas(batch).items()],
                )
                db.executemany(ADD_TO_COUNTER, counter_deltas(batch))
                db.executemany("UPDATE txns SET settled = 1 WHERE key = ?", [(k,) for k in settled])
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):  # the connection itself may be gone
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                raise StoreError(f"ledger commit failed: {exc}") from None

    def entries(self, account_id: str | None = None) -> list[StoredEntry]:
        sql = "SELECT seq, txn_key, account_id, amount FROM entries"
        params: tuple[str, ...] = ()
        if account_id is not None:
            sql += " WHERE account_id = ?"
            params = (account_id,)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY seq", params).fetchall()
        return [StoredEntry(seq=int(a), txn_key=str(b), account_id=str(c), amount=int(d)) for a, b, c, d in rows]
