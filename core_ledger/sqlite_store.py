"""SQLite backend: WAL journal, ``synchronous=FULL`` (a commit survives power loss), one writer.

One ledger process owns one database file. Calls are blocking: the server runs them in a worker thread.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from core_ledger.model import (
    Account,
    AccountKind,
    Card,
    CardStatus,
    Effect,
    Entry,
    HoldChange,
    Merchant,
    RefundChange,
    StatusChange,
    Txn,
)
from core_ledger.state import LedgerState
from core_ledger.store import TXN_COLUMNS, StoreError, rebuild_daily_usage, txn_from_row, txn_row

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
    settled INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS entries (seq INTEGER PRIMARY KEY AUTOINCREMENT, txn_key TEXT NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts, amount INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS entries_by_account ON entries (account_id);
CREATE TABLE IF NOT EXISTS holds (owner TEXT PRIMARY KEY, account_id TEXT NOT NULL, amount INTEGER NOT NULL);
"""


class SqliteStore:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open ledger store {self.path}: {exc}") from None
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    def load(self) -> LedgerState:
        db = self._db
        state = LedgerState()
        for account_id, kind, name, balance, held in db.execute("SELECT * FROM accounts"):
            state.accounts[account_id] = Account(
                account_id=account_id, kind=AccountKind(kind), name=name, balance=balance, held=held
            )
        for pan, account_id, expiry, status, limit in db.execute("SELECT * FROM cards"):
            state.cards[pan] = Card(
                pan=pan, account_id=account_id, expiry=expiry, status=CardStatus(status), daily_limit=limit
            )
        for mid, name, account_id, settlement, aggregator, fee_bp in db.execute("SELECT * FROM merchants"):
            state.merchants[mid] = Merchant(
                merchant_id=mid,
                name=name,
                account_id=account_id,
                settlement=settlement,
                aggregator_account_id=aggregator,
                fee_bp=fee_bp,
            )
        for row in db.execute(f"SELECT {TXN_COLUMNS} FROM txns ORDER BY seq"):  # noqa: S608 - constant columns
            txn = txn_from_row(row)
            state.txns[txn.key] = txn
        for owner, account_id, amount in db.execute("SELECT * FROM holds"):
            state.holds[owner] = (account_id, amount)
        rebuild_daily_usage(state)
        return state

    def save_static(self, state: LedgerState) -> None:
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(
                    "INSERT OR IGNORE INTO accounts VALUES (?, ?, ?, 0, 0)",
                    [(a.account_id, a.kind.value, a.name) for a in state.accounts.values()],
                )
                db.executemany(
                    "INSERT OR REPLACE INTO cards VALUES (?, ?, ?, ?, ?)",
                    [(c.pan, c.account_id, c.expiry, c.status.value, c.daily_limit) for c in state.cards.values()],
                )
                db.executemany(
                    "INSERT OR REPLACE INTO merchants VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        (m.merchant_id, m.name, m.account_id, m.settlement, m.aggregator_account_id, m.fee_bp)
                        for m in state.merchants.values()
                    ],
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def commit(
        self, batch: Sequence[tuple[tuple[Txn, ...], tuple[Effect, ...]]], balances: dict[str, tuple[int, int]]
    ) -> None:
        with self._lock:
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
                for records, effects in batch:
                    for txn in records:
                        db.execute(
                            f"INSERT OR REPLACE INTO txns ({TXN_COLUMNS}) VALUES ({','.join('?' * 16)})",  # noqa: S608
                            txn_row(txn),
                        )
                    for effect in effects:
                        self._write_effect(records, effect)
                db.executemany(
                    "UPDATE accounts SET balance = ?, held = ? WHERE account_id = ?",
                    [(b, h, a) for a, (b, h) in balances.items()],
                )
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise StoreError(f"ledger commit failed: {exc}") from None

    def _write_effect(self, records: tuple[Txn, ...], effect: Effect) -> None:
        db = self._db
        owner = records[-1].key if records else ""
        if isinstance(effect, Entry):
            db.execute(
                "INSERT INTO entries (txn_key, account_id, amount) VALUES (?, ?, ?)",
                (owner, effect.account_id, effect.amount),
            )
        elif isinstance(effect, HoldChange):
            if effect.placed:
                db.execute("INSERT INTO holds VALUES (?, ?, ?)", (effect.owner, effect.account_id, effect.amount))
            else:
                db.execute("DELETE FROM holds WHERE owner = ?", (effect.owner,))
        elif isinstance(effect, StatusChange):
            db.execute("UPDATE txns SET status = ? WHERE key = ?", (effect.new.value, effect.txn))
        elif isinstance(effect, RefundChange):
            db.execute("UPDATE txns SET refunded = refunded + ? WHERE key = ?", (effect.delta, effect.txn))

    # --- tools ---------------------------------------------------------------------------------------------

    def entries_for(self, account_id: str) -> list[tuple[int, str, int]]:
        return list(
            db_rows(
                self._db, "SELECT seq, txn_key, amount FROM entries WHERE account_id = ? ORDER BY seq", (account_id,)
            )
        )

    def entry_sums(self) -> tuple[int, dict[str, int]]:
        total = self._db.execute("SELECT COALESCE(SUM(amount), 0) FROM entries").fetchone()[0]
        per_account = dict(self._db.execute("SELECT account_id, SUM(amount) FROM entries GROUP BY account_id"))
        return int(total), {k: int(v) for k, v in per_account.items()}

    def mark_settled(
        self, keys: Sequence[str], settlement: Txn, entries: Sequence[Entry], balances: dict[str, tuple[int, int]]
    ) -> None:
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany("UPDATE txns SET settled = 1 WHERE key = ?", [(k,) for k in keys])
                db.execute(
                    f"INSERT INTO txns ({TXN_COLUMNS}) VALUES ({','.join('?' * 16)})",  # noqa: S608
                    txn_row(settlement),
                )
                db.executemany(
                    "INSERT INTO entries (txn_key, account_id, amount) VALUES (?, ?, ?)",
                    [(settlement.key, e.account_id, e.amount) for e in entries],
                )
                db.executemany(
                    "UPDATE accounts SET balance = ?, held = ? WHERE account_id = ?",
                    [(b, h, a) for a, (b, h) in balances.items()],
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise


def db_rows(db: sqlite3.Connection, sql: str, params: tuple[object, ...]) -> list[tuple[int, str, int]]:
    return [(int(a), str(b), int(c)) for a, b, c in db.execute(sql, params)]
