"""The wallet host's SQLite store: WAL, ``synchronous=FULL``; one decision's records in one transaction.

Why its own store rather than the core ledger's accounts: a wallet is the consumer's institution, not the
acquirer's, and one decision touches the payment code (now used), both accounts and the answer a retry must
get again. Here they commit together or not at all; through the ledger's client the code's use and the debit
would live in two stores, and a crash between them could lose or double a payment.
"""

from __future__ import annotations

import sqlite3
from typing import Final

from acqkit.sqlitedb import DurableStore
from wallet.model import (
    Account,
    Answered,
    BatchState,
    Order,
    OrderState,
    Payment,
    PaymentCode,
    PaymentState,
    Record,
    SettledItem,
    SettlementBatch,
    WalletBook,
)
from wire.field59 import Wallet

#: table → its columns, in the order rows are written and read (named, never ``SELECT *``).
COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "accounts": ("account_id", "wallet", "balance", "password_hash"),
    "codes": ("code", "account_id", "expires_at", "used"),
    "payments": (
        "voucher",
        "key",
        "account_id",
        "merchant_id",
        "terminal_id",
        "amount",
        "state",
        "created_at",
        "refunded",
        "order_no",
    ),
    "orders": ("order_no", "key", "merchant_id", "terminal_id", "amount", "expires_at", "state", "voucher"),
    "answered": ("key", "answer"),
    "batches": ("batch_key", "wallet", "business_date", "merchant_id", "amount", "count", "state"),
    "settled_items": ("batch_key", "voucher", "amount"),
}
SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS accounts (account_id TEXT PRIMARY KEY, wallet TEXT NOT NULL, balance INTEGER NOT NULL,
    password_hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS codes (code TEXT PRIMARY KEY, account_id TEXT NOT NULL, expires_at REAL NOT NULL,
    used INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS payments (voucher TEXT PRIMARY KEY, key TEXT NOT NULL, account_id TEXT NOT NULL,
    merchant_id TEXT NOT NULL, terminal_id TEXT NOT NULL, amount INTEGER NOT NULL, state TEXT NOT NULL,
    created_at REAL NOT NULL, refunded INTEGER NOT NULL, order_no TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS orders (order_no TEXT PRIMARY KEY, key TEXT NOT NULL, merchant_id TEXT NOT NULL,
    terminal_id TEXT NOT NULL, amount INTEGER NOT NULL, expires_at REAL NOT NULL, state TEXT NOT NULL,
    voucher TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS answered (key TEXT PRIMARY KEY, answer TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS batches (batch_key TEXT PRIMARY KEY, wallet TEXT NOT NULL, business_date TEXT NOT NULL,
    merchant_id TEXT NOT NULL, amount INTEGER NOT NULL, count INTEGER NOT NULL, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS settled_items (batch_key TEXT NOT NULL, voucher TEXT NOT NULL, amount INTEGER NOT NULL,
    PRIMARY KEY (batch_key, voucher));
"""
#: The store's file name in the data directory.
WALLET_DB: Final = "wallet.sqlite3"


class WalletStoreError(Exception):
    """The wallet store cannot be opened, read or written."""


def _insert(table: str) -> str:
    columns = COLUMNS[table]
    marks = ", ".join("?" * len(columns))
    return f"INSERT OR REPLACE INTO {table} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608 - our constants


def _select(table: str) -> str:
    return f"SELECT {', '.join(COLUMNS[table])} FROM {table}"  # noqa: S608 - names are this module's constants


def _row(record: Record) -> tuple[str, tuple[object, ...]]:
    match record:
        case Account():
            values: tuple[object, ...] = (record.account_id, record.wallet.value, record.balance, record.password_hash)
            return _insert("accounts"), values
        case PaymentCode():
            return _insert("codes"), (record.code, record.account_id, record.expires_at, int(record.used))
        case Payment():
            return _insert("payments"), (
                record.voucher,
                record.key,
                record.account_id,
                record.merchant_id,
                record.terminal_id,
                record.amount,
                record.state.value,
                record.created_at,
                record.refunded,
                record.order,
            )
        case Order():
            return _insert("orders"), (
                record.order,
                record.key,
                record.merchant_id,
                record.terminal_id,
                record.amount,
                record.expires_at,
                record.state.value,
                record.voucher,
            )
        case Answered():
            return _insert("answered"), (record.key, record.answer)
        case SettlementBatch():
            return _insert("batches"), (
                record.key,
                record.wallet.value,
                record.business_date,
                record.merchant_id,
                record.amount,
                record.count,
                record.state.value,
            )
        case SettledItem():
            # Plain INSERT: an item is written once; a second write of the same (batch, voucher) is a bug
            # that must fail the transaction rather than count the payment twice.
            sql = "INSERT INTO settled_items (batch_key, voucher, amount) VALUES (?, ?, ?)"
            return sql, (record.batch_key, record.voucher, record.amount)


class WalletStore(DurableStore):
    kind = "wallet store"
    schema = SCHEMA
    error = WalletStoreError

    def commit(self, records: tuple[Record, ...]) -> None:
        """Write ``records`` in one transaction (all or none). Blocking: the server runs it in a thread."""
        if records:
            self.write(_row(record) for record in records)

    def load(self) -> WalletBook:
        return self.read(_load)


def _load(db: sqlite3.Connection) -> WalletBook:
    book = WalletBook()
    db.execute("BEGIN")
    try:
        for account_id, wallet, balance, password_hash in db.execute(_select("accounts")):
            book.accounts[account_id] = Account(
                account_id=account_id, wallet=Wallet(wallet), balance=balance, password_hash=password_hash
            )
        for code, account_id, expires_at, used in db.execute(_select("codes")):
            book.codes[code] = PaymentCode(code=code, account_id=account_id, expires_at=expires_at, used=bool(used))
        for row in db.execute(_select("payments")):
            voucher, key, account_id, merchant_id, terminal_id, amount, state, created_at, refunded, order = row
            book.payments[voucher] = Payment(
                voucher=voucher,
                key=key,
                account_id=account_id,
                merchant_id=merchant_id,
                terminal_id=terminal_id,
                amount=amount,
                state=PaymentState(state),
                created_at=created_at,
                refunded=refunded,
                order=order,
            )
        for order_no, key, merchant_id, terminal_id, amount, expires_at, state, voucher in db.execute(
            _select("orders")
        ):
            book.orders[order_no] = Order(
                order=order_no,
                key=key,
                merchant_id=merchant_id,
                terminal_id=terminal_id,
                amount=amount,
                expires_at=expires_at,
                state=OrderState(state),
                voucher=voucher,
            )
        book.answered.update(db.execute(_select("answered")).fetchall())
        for _key, wallet, business_date, merchant_id, amount, count, state in db.execute(_select("batches")):
            batch = SettlementBatch(
                wallet=Wallet(wallet),
                business_date=business_date,
                merchant_id=merchant_id,
                amount=amount,
                count=count,
                state=BatchState(state),
            )
            book.batches[batch.key] = batch
        for _batch, voucher, amount in db.execute(_select("settled_items")):
            book.settled[voucher] = book.settled.get(voucher, 0) + amount
    finally:
        db.execute("COMMIT")
    return book
