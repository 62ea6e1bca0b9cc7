"""The SQL both ledger stores share: reading the whole state and writing one effect, by named columns.

Statements are written with ``?`` placeholders (SQLite's); :func:`format_params` turns them into psycopg's
``%s``. Each backend keeps only what really differs: connecting, transactions and its own errors.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from core_ledger.daycounters import DAYS_KEPT
from core_ledger.history import TxnHistory
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
)
from core_ledger.state import LedgerState
from core_ledger.store import (
    ACCOUNT_COLUMNS,
    CARD_COLUMNS,
    COUNTER_DAYS,
    COUNTER_ROWS,
    HOLD_COLUMNS,
    MERCHANT_COLUMNS,
    TXN_COLUMNS,
    StoreError,
    txn_from_row,
)

#: Runs a read-only statement (no parameters) and returns its rows.
Rows = Callable[[str], Iterable[Sequence[Any]]]
#: One statement to run: SQL with ``?`` placeholders, and its parameters.
Statement = tuple[str, tuple[Any, ...]]


def format_params(sql: str) -> str:
    """``sql`` with psycopg's ``%s`` placeholders (our statements hold no literal ``?``)."""
    return sql.replace("?", "%s")


def load_state(rows: Rows, *, keep: int | None = None) -> LedgerState:
    """Everything committed, read through ``rows`` inside one snapshot the caller holds; with ``keep``, only
    that many of the most recent transactions stay in memory (:class:`core_ledger.history.TxnHistory`: the
    caller gives it a reader for the rest), the others' keys passing through once for the history's filter."""
    with no_cyclic_collection():
        return _load_state(rows, keep)


@contextlib.contextmanager
def no_cyclic_collection() -> Iterator[None]:
    """The cyclic collector off while a load makes its millions of objects (and no cycles): its passes over them
    took a third of a load's time (300,000 stored purchases, 100,000 kept: 3.5–3.8 s with it, 2.35–2.45 s without,
    alternated). It is on again afterwards if it was before."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _load_state(rows: Rows, keep: int | None) -> LedgerState:
    state = LedgerState(txns=TxnHistory(keep), days_kept=None if keep is None else DAYS_KEPT)
    for account_id, kind, name, balance, held in rows(f"SELECT {ACCOUNT_COLUMNS} FROM accounts"):  # noqa: S608
        state.accounts[account_id] = Account(
            account_id=account_id, kind=AccountKind(kind), name=name, balance=int(balance), held=int(held)
        )
    for pan, account_id, expiry, status, limit in rows(f"SELECT {CARD_COLUMNS} FROM cards"):  # noqa: S608
        state.cards[pan] = Card(
            pan=pan,
            account_id=account_id,
            expiry=expiry,
            status=CardStatus(status),
            daily_limit=None if limit is None else int(limit),
        )
    for mid, name, account_id, settlement, aggregator, fee_bp in rows(
        f"SELECT {MERCHANT_COLUMNS} FROM merchants"  # noqa: S608
    ):
        state.merchants[mid] = Merchant(
            merchant_id=mid,
            name=name,
            account_id=account_id,
            settlement=settlement,
            aggregator_account_id=aggregator,
            fee_bp=int(fee_bp),
        )
    _load_counters(rows, state, keep_all=keep is None)
    first_kept = _first_kept_seq(rows, keep)
    # The older ones only pass through: their keys for the history's filter, nothing else read (a restart after
    # an hour at 1,000/s passes 3.6 million).
    for (key,) in rows(f"SELECT key FROM txns WHERE seq < {first_kept} ORDER BY seq"):  # noqa: S608
        state.txns.add_outside(key)
    for row in rows(f"SELECT {TXN_COLUMNS} FROM txns WHERE seq >= {first_kept} ORDER BY seq"):  # noqa: S608
        state.add_txn(txn_from_row(row))
    for owner, account_id, amount in rows(f"SELECT {HOLD_COLUMNS} FROM holds"):  # noqa: S608
        state.holds[owner] = (account_id, int(amount))
    return state


def _load_counters(rows: Rows, state: LedgerState, *, keep_all: bool) -> None:
    """The cards' day counters: every one, or (a serving ledger) those of the newest :data:`DAYS_KEPT` business
    days stored, the older days left to be read back on a miss (:mod:`core_ledger.daycounters`)."""
    days = [str(day) for (day,) in rows(COUNTER_DAYS)]
    kept = days if keep_all else days[:DAYS_KEPT]
    for day in days[len(kept) :]:
        state.daily.note_stored_day(day)
        state.pin_failures.note_stored_day(day)
    if not kept:
        return
    if not all(day.isdigit() for day in kept):  # business dates are stored as YYYYMMDD
        raise StoreError(f"card_counters has a business date that is not YYYYMMDD: {kept!r}")
    for pan, day, kind, total in rows(f"{COUNTER_ROWS} WHERE business_date >= '{kept[-1]}'"):
        state.counters(kind).load(pan, day, int(total))


def _first_kept_seq(rows: Rows, keep: int | None) -> int:
    """The ``seq`` of the oldest transaction to hold in memory (0: all of them)."""
    if keep is None:
        return 0
    found = list(rows(f"SELECT seq FROM txns ORDER BY seq DESC LIMIT 1 OFFSET {int(keep) - 1}"))  # noqa: S608
    return int(found[0][0]) if found else 0


def effect_statement(owner: str, effect: Effect) -> Statement | None:
    """The statement that stores ``effect`` of the transaction ``owner`` (none for a card counter's change: a batch
    adds those up first, :func:`core_ledger.store.counter_deltas`)."""
    if isinstance(effect, Entry):
        return "INSERT INTO entries (txn_key, account_id, amount) VALUES (?, ?, ?)", (
            owner,
            effect.account_id,
            effect.amount,
        )
    if isinstance(effect, HoldChange):
        if effect.placed:
            sql = f"INSERT INTO holds ({HOLD_COLUMNS}) VALUES (?, ?, ?)"  # noqa: S608
            return sql, (effect.owner, effect.account_id, effect.amount)
        return "DELETE FROM holds WHERE owner = ?", (effect.owner,)
    if isinstance(effect, StatusChange):
        return "UPDATE txns SET status = ? WHERE key = ?", (effect.new.value, effect.txn)
    if isinstance(effect, RefundChange):
        return "UPDATE txns SET refunded = refunded + ? WHERE key = ?", (effect.delta, effect.txn)
    return None
