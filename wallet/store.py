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
from wallet.model import Account, Answered, Order, OrderState, Payment, PaymentCode, PaymentState, Record, WalletBook
from wire.field59 import Wallet

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
"""
#: The store's file name in the data directory.
WALLET_DB: Final = "wallet.sqlite3"


class WalletStoreError(Exception):
    """The wallet store cannot be opened, read or written."""


def _row(record: Record) -> tuple[str, tuple[object, ...]]:
    match record:
        case Account():
            return "INSERT OR REPLACE INTO accounts VALUES (?, ?, ?, ?)", (
                record.account_id,
                record.wallet.value,
                record.balance,
                record.password_hash,
            )
        case PaymentCode():
            return "INSERT OR REPLACE INTO codes VALUES (?, ?, ?, ?)", (
                record.code,
                record.account_id,
                record.expires_at,
                int(record.used),
            )
        case Payment():
            return "INSERT OR REPLACE INTO payments VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", (
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
            return "INSERT OR REPLACE INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (
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
            return "INSERT OR REPLACE INTO answered VALUES (?, ?)", (record.key, record.answer)


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
        for account_id, wallet, balance, password_hash in db.execute("SELECT * FROM accounts"):
            book.accounts[account_id] = Account(
                account_id=account_id, wallet=Wallet(wallet), balance=balance, password_hash=password_hash
            )
        for code, account_id, expires_at, used in db.execute("SELECT * FROM codes"):
            book.codes[code] = PaymentCode(code=code, account_id=account_id, expires_at=expires_at, used=bool(used))
        for row in db.execute("SELECT * FROM payments"):
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
            "SELECT * FROM orders"
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
        book.answered.update(db.execute("SELECT key, answer FROM answered").fetchall())
    finally:
        db.execute("COMMIT")
    return book
