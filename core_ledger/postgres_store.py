"""PostgreSQL backend (psycopg 3): the same interface and tables as the SQLite store.

A ``commit`` is one PostgreSQL transaction; every session sets ``synchronous_commit = on`` itself
(:data:`SESSION_OPTIONS`, whatever the server's default), so a commit returns only once its WAL record is
flushed to disk (:meth:`PostgresStore.setting` shows it); the group commit of :mod:`core_ledger.service`
shares one flush among all requests of a batch. One connection, guarded by a lock: the ledger has a single
writer by design. Calls are blocking: the server runs them in a worker thread.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from typing import Any, Final

import psycopg

from core_ledger.model import Effect, Txn
from core_ledger.sql import effect_statement, format_params, load_state
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
    StoreUnavailable,
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

#: Longest a connection attempt may take.
CONNECT_TIMEOUT_S: Final = 10
#: Set on every ledger session: a commit is durable (WAL flushed) before the ledger answers.
SESSION_OPTIONS: Final = "-c synchronous_commit=on"
#: What libpq puts before an error the server itself sent while a connection was being opened.
SERVER_REFUSED_MARK: Final = "FATAL:"
#: Rows fetched at a time when the store is loaded.
LOAD_ROWS_PER_FETCH: Final = 5_000

SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS accounts (account_id TEXT PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL,
    balance BIGINT NOT NULL DEFAULT 0, held BIGINT NOT NULL DEFAULT 0)""",
    """CREATE TABLE IF NOT EXISTS cards (pan TEXT PRIMARY KEY, account_id TEXT NOT NULL REFERENCES accounts,
    expiry TEXT NOT NULL, status TEXT NOT NULL, daily_limit BIGINT)""",
    """CREATE TABLE IF NOT EXISTS merchants (merchant_id TEXT PRIMARY KEY, name TEXT NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts, settlement TEXT NOT NULL, aggregator_account_id TEXT,
    fee_bp INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS txns (seq BIGSERIAL PRIMARY KEY, key TEXT NOT NULL UNIQUE, op TEXT NOT NULL,
    pan TEXT NOT NULL, amount BIGINT NOT NULL, terminal_id TEXT NOT NULL, merchant_id TEXT NOT NULL,
    business_date TEXT NOT NULL, rrn TEXT NOT NULL, fingerprint TEXT NOT NULL, answer TEXT NOT NULL,
    status TEXT NOT NULL, original TEXT, auth_code TEXT, refunded BIGINT NOT NULL, effects TEXT NOT NULL,
    settled INTEGER NOT NULL, ref TEXT NOT NULL, forced INTEGER NOT NULL DEFAULT 0)""",
    """CREATE TABLE IF NOT EXISTS entries (seq BIGSERIAL PRIMARY KEY, txn_key TEXT NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts, amount BIGINT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS entries_by_account ON entries (account_id)",
    # byte order, so that a reference day's range is one index range whatever the database's collation
    'CREATE INDEX IF NOT EXISTS txns_by_ref ON txns ((ref COLLATE "C"))',
    "CREATE TABLE IF NOT EXISTS holds (owner TEXT PRIMARY KEY, account_id TEXT NOT NULL, amount BIGINT NOT NULL)",
)


class PostgresStore:
    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self._db = psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S, options=SESSION_OPTIONS)
            with self._db.transaction():
                # Two ledgers creating the schema at once must not collide: serialise on an advisory lock.
                self._db.execute("SELECT pg_advisory_xact_lock(8583)")
                columns = self._rows(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = current_schema() AND table_name = 'txns'"
                )
                existing = [str(row[0]) for row in columns]
                check_schema(_safe(url), existing)
                for statement in (*SCHEMA, *added_column_statements(existing)):
                    self._db.execute(statement)
                self._add_counters()
        except StoreError:
            self._db.close()
            raise
        except psycopg.OperationalError as exc:
            # A server that answered and refused us (no such database, bad password) reports libpq's "FATAL:";
            # without it the server was never reached (refused, timed out): a peer down, not a bad setting.
            failure = StoreError if SERVER_REFUSED_MARK in str(exc) else StoreUnavailable
            raise failure(f"cannot open ledger store at {_safe(url)}: {type(exc).__name__}") from None
        except psycopg.Error as exc:
            raise StoreError(f"cannot open ledger store at {_safe(url)}: {type(exc).__name__}") from None
        self._lock = threading.Lock()
        self._reads: psycopg.Connection[Any] | None = None  # the history's read connection, opened on first use

    def _add_counters(self) -> None:
        """Inside the schema's transaction: create ``card_counters`` if the store has none yet, filled from the
        transactions already stored (a store written by an older acqsim)."""
        if self._rows("SELECT to_regclass('card_counters')")[0][0] is not None:
            return
        self._db.execute(COUNTERS_TABLE)
        with self._db.cursor() as cur:
            cur.executemany(
                format_params(ADD_TO_COUNTER), counters_of_stored_effects(self._stream("SELECT effects FROM txns"))
            )

    def close(self) -> None:
        self._drop_reader()
        self._db.close()

    def _read_rows(self, sql: str, params: Sequence[Any]) -> Sequence[Sequence[Any]]:
        """Rows read on a connection of their own (autocommit, read committed: never waiting for the writer),
        opened afresh once if it fails (a server restarted since)."""

        def read() -> list[tuple[Any, ...]]:
            if self._reads is None:
                self._reads = psycopg.connect(
                    self.url, connect_timeout=CONNECT_TIMEOUT_S, options=SESSION_OPTIONS, autocommit=True
                )
            return self._reads.execute(sql, params).fetchall()

        return read_rows_retrying(
            read,
            reset=self._drop_reader,
            errors=psycopg.Error,
            failure=lambda exc: StoreError(f"ledger read failed: {type(exc).__name__}: {getattr(exc, 'sqlstate', '')}"),
        )

    def _drop_reader(self) -> None:
        reads, self._reads = self._reads, None
        if reads is not None:
            with contextlib.suppress(psycopg.Error):
                reads.close()

    def txns_by_key(self, keys: Sequence[str]) -> list[Txn]:
        rows = self._read_rows(f"SELECT {TXN_COLUMNS} FROM txns WHERE key = ANY(%s)", (list(keys),))  # noqa: S608
        return [txn_from_row(row) for row in rows]

    def txns_by_ref_day(self, day: str) -> list[Txn]:
        sql = (
            f"SELECT {TXN_COLUMNS} FROM txns "  # noqa: S608
            'WHERE ref COLLATE "C" >= %s AND ref COLLATE "C" < %s ORDER BY seq'
        )
        return [txn_from_row(row) for row in self._read_rows(sql, ref_day_bounds(day))]

    def counter_total(self, kind: str, pan: str, day: str) -> int | None:
        rows = self._read_rows(format_params(COUNTER_TOTAL), (pan, day, kind))
        return int(rows[0][0]) if rows else None

    def setting(self, name: str) -> str:
        """A run-time setting of the ledger's session (``SHOW``), e.g. ``synchronous_commit``."""
        with self._lock:
            row = self._db.execute("SELECT current_setting(%s)", (name,)).fetchone()
            self._db.commit()
        return str(row[0]) if row else ""

    def load(self, *, keep: int | None = None) -> LedgerState:
        with self._lock:
            try:
                with self._db.transaction():
                    self._db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")  # one snapshot
                    state = load_state(self._stream, keep=keep)
                    state.txns.reader = state.daily.reader = state.pin_failures.reader = self
                    return state
            except psycopg.Error as exc:
                raise StoreError(f"ledger load failed: {type(exc).__name__}: {exc.sqlstate}") from None

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._db.execute(sql, params).fetchall()

    def _stream(self, sql: str) -> Iterator[tuple[Any, ...]]:
        """A query's rows a few thousand at a time (a server-side cursor: the whole table is never in memory)."""
        with self._db.cursor(name="ledger_load") as cur:
            cur.itersize = LOAD_ROWS_PER_FETCH
            cur.execute(sql)
            yield from cur

    def save_static(self, state: LedgerState) -> None:
        with self._lock, self._db.transaction(), self._db.cursor() as cur:
            cur.executemany(
                "INSERT INTO accounts (account_id, kind, name) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                [(a.account_id, a.kind.value, a.name) for a in state.accounts.values()],
            )
            cur.executemany(
                f"INSERT INTO cards ({CARD_COLUMNS}) VALUES (%s, %s, %s, %s, %s) ON CONFLICT (pan) DO UPDATE SET "  # noqa: S608
                "account_id = EXCLUDED.account_id, expiry = EXCLUDED.expiry, status = EXCLUDED.status, "
                "daily_limit = EXCLUDED.daily_limit",
                [(c.pan, c.account_id, c.expiry, c.status.value, c.daily_limit) for c in state.cards.values()],
            )
            cur.executemany(
                f"INSERT INTO merchants ({MERCHANT_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s) "  # noqa: S608
                "ON CONFLICT (merchant_id) DO UPDATE SET "
                "name = EXCLUDED.name, account_id = EXCLUDED.account_id, settlement = EXCLUDED.settlement, "
                "aggregator_account_id = EXCLUDED.aggregator_account_id, fee_bp = EXCLUDED.fee_bp",
                [
                    (m.merchant_id, m.name, m.account_id, m.settlement, m.aggregator_account_id, m.fee_bp)
                    for m in state.merchants.values()
                ],
            )

    def commit(self, batch: Sequence[Posting], *, settled: Sequence[str] = ()) -> None:
        placeholders = ", ".join(["%s"] * TXN_COLUMN_COUNT)
        with self._lock:
            try:
                # Pipeline mode: the batch's statements go out without waiting for each reply (one round trip
                # per sync point instead of one per statement); errors still abort the whole transaction.
                with self._db.pipeline(), self._db.transaction(), self._db.cursor() as cur:
                    for records, effects in batch:
                        for txn in records:
                            cur.execute(
                                f"INSERT INTO txns ({TXN_COLUMNS}) VALUES ({placeholders})",  # noqa: S608
                                txn_row(txn),
                            )
                        owner = entry_owner(records)
                        for effect in effects:
                            _write_effect(cur, owner, effect)
                    cur.executemany(
                        "UPDATE accounts SET balance = balance + %s, held = held + %s WHERE account_id = %s",
                        [(b, h, a) for a, (b, h) in account_deltas(batch).items()],
                    )
                    cur.executemany(format_params(ADD_TO_COUNTER), counter_deltas(batch))
                    cur.executemany("UPDATE txns SET settled = 1 WHERE key = %s", [(k,) for k in settled])
            except psycopg.Error as exc:
                raise StoreError(f"ledger commit failed: {type(exc).__name__} (SQLSTATE {exc.sqlstate})") from None

    def entries(self, account_id: str | None = None) -> list[StoredEntry]:
        sql = "SELECT seq, txn_key, account_id, amount FROM entries"
        params: tuple[str, ...] = ()
        if account_id is not None:
            sql += " WHERE account_id = %s"
            params = (account_id,)
        with self._lock, self._db.transaction():
            rows = self._rows(sql + " ORDER BY seq", params)
        return [StoredEntry(seq=int(a), txn_key=str(b), account_id=str(c), amount=int(d)) for a, b, c, d in rows]


def _write_effect(cur: psycopg.Cursor[Any], owner: str, effect: Effect) -> None:
    statement = effect_statement(owner, effect)
    if statement is not None:
        sql, params = statement
        cur.execute(format_params(sql), params)


def _safe(url: str) -> str:
    """The URL without a password, for error messages."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        credentials, _, host = rest.rpartition("@")
        rest = f"{credentials.split(':')[0]}@{host}"
    return f"{scheme}{sep}{rest}"
