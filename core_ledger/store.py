"""The storage interface of the ledger, and the serialisation both backends share.

A store keeps the static data (accounts, cards, merchants), every transaction with the effects it applied,
the entries, the open holds and each account's balance. ``commit`` writes a whole batch of decisions in ONE
database transaction (group commit: concurrent requests share one fsync); the server answers a request only
after the batch holding it is committed.

Balances are written as deltas (``balance = balance + d``), computed from the batch's own effects, so a
batch never overwrites what another writer (the offline settlement tool) committed meanwhile. So are the cards'
day counters (``card_counters``: debits for daily limits, wrong PINs for the PIN-try limit), kept with the
postings that change them so that a start-up reads them as they are instead of from every transaction's effects.
A transaction key is inserted with a plain INSERT under a UNIQUE constraint: posting one key twice is a database error,
never a silent second posting.

Backends: :mod:`core_ledger.sqlite_store` (a file path) and :mod:`core_ledger.postgres_store` (a
``postgresql://`` URL); :func:`core_ledger.setup.open_store` picks one from the ``--db`` setting.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final, Protocol

from core_ledger.api import LedgerAnswer
from core_ledger.model import (
    DAILY_DEBITS,
    PIN_FAILURES,
    DailyUsage,
    Effect,
    Entry,
    HoldChange,
    PinFailure,
    RefundChange,
    StatusChange,
    Txn,
    TxnStatus,
    parse_op,
)
from core_ledger.state import LedgerState
from wire.constants import ResponseCode


class StoreError(Exception):
    """The store could not be opened, read or written."""


class StoreUnavailable(StoreError):
    """The store's database server could not be reached (refused, timed out): a peer down, not a bad setting."""


#: One decision to make durable: the new transactions it records and the effects it applies.
Posting = tuple[tuple[Txn, ...], tuple[Effect, ...]]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class StoredEntry:
    seq: int
    txn_key: str
    account_id: str
    amount: int


class LedgerStore(Protocol):
    """What the ledger needs from a database. Every method is blocking (run it in a worker thread)."""

    def load(self, *, keep: int | None = None) -> LedgerState:
        """Everything committed: accounts with balances and holds, cards, merchants, transactions (with ``keep``,
        only the most recent that many of them in memory, the store as the history's reader for the rest)."""
        ...

    def txns_by_key(self, keys: Sequence[str]) -> list[Txn]:
        """The committed transactions under ``keys`` (those that exist). Unlike the other methods, safe to call
        from the event loop while a commit runs: it reads on a connection of its own, one indexed query."""
        ...

    def txns_by_ref_day(self, day: str) -> list[Txn]:
        """The committed transactions whose field-90 reference starts with ``day`` + ``|``, oldest first (as
        :meth:`txns_by_key`)."""
        ...

    def counter_total(self, kind: str, pan: str, day: str) -> int | None:
        """One card's committed day counter (``None``: no row), as :meth:`txns_by_key` reads."""
        ...

    def save_static(self, state: LedgerState) -> None:
        """Add accounts that are new (balance 0) and add or replace cards and merchants."""
        ...

    def commit(self, batch: Sequence[Posting], *, settled: Sequence[str] = ()) -> None:
        """Write ``batch`` (and mark the ``settled`` transaction keys) in one durable transaction."""
        ...

    def entries(self, account_id: str | None = None) -> list[StoredEntry]:
        """Every entry in posting order (of one account, if given)."""
        ...

    def setting(self, name: str) -> str:
        """A durability setting of the store's session, as the database reports it (see each backend)."""
        ...

    def close(self) -> None: ...


def account_deltas(batch: Sequence[Posting]) -> dict[str, tuple[int, int]]:
    """Per account, (balance change, held change) that ``batch`` applies."""
    deltas: dict[str, tuple[int, int]] = {}
    for _, effects in batch:
        for effect in effects:
            if isinstance(effect, Entry):
                balance, held = deltas.get(effect.account_id, (0, 0))
                deltas[effect.account_id] = (balance + effect.amount, held)
            elif isinstance(effect, HoldChange):
                balance, held = deltas.get(effect.account_id, (0, 0))
                deltas[effect.account_id] = (balance, held + (effect.amount if effect.placed else -effect.amount))
    return deltas


def counter_deltas(batch: Sequence[Posting]) -> list[tuple[str, str, str, int]]:
    """(PAN, business date, kind, change) of each card counter ``batch`` changes: :data:`ADD_TO_COUNTER`'s rows."""
    return counter_totals(effect for _, effects in batch for effect in effects)


def counters_of_stored_effects(effects_columns: Iterable[Sequence[Any]]) -> list[tuple[str, str, str, int]]:
    """The counters the stored transactions' effects (rows of one ``effects`` column each) add up to: what a store
    written before ``card_counters`` existed fills it with when it is opened."""
    return counter_totals(
        effect_from_json(raw)
        for (effects,) in effects_columns
        for raw in json.loads(effects)
        if raw[0] in _COUNTER_KINDS
    )


def counter_totals(effects: Iterable[Effect]) -> list[tuple[str, str, str, int]]:
    """(PAN, business date, kind, total) of each card counter ``effects`` change, added up."""
    totals: dict[tuple[str, str, str], int] = {}
    for effect in effects:
        if isinstance(effect, DailyUsage | PinFailure):
            slot = (effect.pan, effect.business_date, effect.KIND)
            totals[slot] = totals.get(slot, 0) + effect.delta
    return [(*slot, total) for slot, total in totals.items()]


def entry_owner(records: tuple[Txn, ...]) -> str:
    """The transaction an effect's entries belong to: the last record (a tombstone comes before its reversal)."""
    return records[-1].key if records else ""


def effect_to_json(effect: Effect) -> list[Any]:
    if isinstance(effect, Entry):
        return ["E", effect.account_id, effect.amount]
    if isinstance(effect, HoldChange):
        return ["H", effect.owner, effect.account_id, effect.amount, effect.placed]
    if isinstance(effect, StatusChange):
        return ["S", effect.txn, effect.old.value, effect.new.value]
    if isinstance(effect, RefundChange):
        return ["R", effect.txn, effect.delta]
    return [effect.KIND, effect.pan, effect.business_date, effect.delta]  # a card counter: DailyUsage, PinFailure


_COUNTER_KINDS: Final = frozenset({DAILY_DEBITS, PIN_FAILURES})

#: The cards' day counters: one row per (PAN, business date, kind), changed by each commit in the same transaction
#: as the postings (both backends: SQLite reads BIGINT as an integer).
COUNTERS_TABLE: Final = """CREATE TABLE card_counters (pan TEXT NOT NULL, business_date TEXT NOT NULL,
    kind TEXT NOT NULL, total BIGINT NOT NULL, PRIMARY KEY (pan, business_date, kind))"""
#: Adds a batch's change to a counter (``?`` placeholders: :func:`core_ledger.sql.format_params` for psycopg).
ADD_TO_COUNTER: Final = (
    "INSERT INTO card_counters (pan, business_date, kind, total) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (pan, business_date, kind) DO UPDATE SET total = card_counters.total + excluded.total"
)
#: Reads every counter (start-up; a serving ledger adds a WHERE for its newest days).
COUNTER_ROWS: Final = "SELECT pan, business_date, kind, total FROM card_counters"
#: The business days that have counters, newest first (start-up).
COUNTER_DAYS: Final = "SELECT DISTINCT business_date FROM card_counters ORDER BY business_date DESC"
#: One card's counter of one kind and day (a day no longer in memory: :mod:`core_ledger.daycounters`).
COUNTER_TOTAL: Final = "SELECT total FROM card_counters WHERE pan = ? AND business_date = ? AND kind = ?"


def effect_from_json(raw: list[Any]) -> Effect:
    kind = raw[0]
    if kind == "E":
        return Entry(raw[1], int(raw[2]))
    if kind == "H":
        return HoldChange(raw[1], raw[2], int(raw[3]), bool(raw[4]))
    if kind == "S":
        return StatusChange(raw[1], TxnStatus(raw[2]), TxnStatus(raw[3]))
    if kind == "R":
        return RefundChange(raw[1], int(raw[2]))
    if kind == DAILY_DEBITS:
        return DailyUsage(raw[1], raw[2], int(raw[3]))
    if kind == PIN_FAILURES:
        return PinFailure(raw[1], raw[2], int(raw[3]))
    raise StoreError(f"unknown effect kind {kind!r}")


#: One compact encoder for every row (``json.dumps`` with ``separators`` builds a new encoder per call).
_to_json: Final = json.JSONEncoder(separators=(",", ":")).encode


def effects_to_text(effects: tuple[Effect, ...]) -> str:
    return _to_json([effect_to_json(e) for e in effects])


def effects_from_text(text: str) -> tuple[Effect, ...]:
    return tuple(effect_from_json(raw) for raw in json.loads(text))


def answer_to_text(answer: LedgerAnswer) -> str:
    return _to_json(
        {
            "rc": answer.response_code.value,
            "rrn": answer.rrn,
            "auth": answer.auth_code,
            "bal": answer.balance,
            "avail": answer.available,
            "cur": answer.currency,
        }
    )


def answer_from_text(text: str) -> LedgerAnswer:
    raw = json.loads(text)
    return LedgerAnswer(
        response_code=ResponseCode(raw["rc"]),
        rrn=raw["rrn"],
        auth_code=raw["auth"],
        balance=raw["bal"],
        available=raw["avail"],
        currency=raw["cur"],
    )


def txn_row(txn: Txn) -> tuple[Any, ...]:
    return (
        txn.key,
        txn.op.value,
        txn.pan,
        txn.amount,
        txn.terminal_id,
        txn.merchant_id,
        txn.business_date,
        txn.rrn,
        txn.fingerprint,
        answer_to_text(txn.answer),
        txn.status.value,
        txn.original,
        txn.auth_code,
        txn.refunded,
        effects_to_text(txn.effects),
        int(txn.settled),
        txn.ref,
        int(txn.forced),
    )


TXN_COLUMNS = (
    "key, op, pan, amount, terminal_id, merchant_id, business_date, rrn, fingerprint, answer, status, "
    "original, auth_code, refunded, effects, settled, ref, forced"
)
TXN_COLUMN_COUNT = len(TXN_COLUMNS.split(","))
#: Every statement names its columns (never ``SELECT *`` read by position): both backends use these lists.
ACCOUNT_COLUMNS = "account_id, kind, name, balance, held"
CARD_COLUMNS = "pan, account_id, expiry, status, daily_limit"
MERCHANT_COLUMNS = "merchant_id, name, account_id, settlement, aggregator_account_id, fee_bp"
HOLD_COLUMNS = "owner, account_id, amount"


def check_schema(where: str, txn_columns: Sequence[str]) -> None:
    """Refuse a store written by the old key schema (``txn_columns`` of an existing txns table, or none).

    Its keys were (32, 41, 11, 13): a new transaction that reused a STAN looked like a repeat, and its keys
    cannot be turned into (32, 37) ones, so reading it would misbehave silently.
    """
    if txn_columns and "ref" not in txn_columns:
        raise StoreError(
            f"ledger store {where} uses the old idempotency key (32, 41, 11, 13) and cannot be used by this "
            "version: settle it, keep it as an archive, and start the ledger on a new --db"
        )


#: Columns added to ``txns`` since the (32, 37) key schema, with their definitions: a store written before
#: one was added gets it (with its default) when it is opened.
ADDED_TXN_COLUMNS: Final = {"forced": "INTEGER NOT NULL DEFAULT 0"}


def added_column_statements(txn_columns: Sequence[str]) -> list[str]:
    """The ``ALTER TABLE`` statements that bring an existing txns table (``txn_columns``; none: a new store,
    which the schema creates whole) up to date."""
    if not txn_columns:
        return []
    return [
        f"ALTER TABLE txns ADD COLUMN {name} {definition}"
        for name, definition in ADDED_TXN_COLUMNS.items()
        if name not in txn_columns
    ]


def read_rows_retrying(
    read: Callable[[], Sequence[Sequence[Any]]],
    *,
    reset: Callable[[], None],
    errors: type[Exception],
    failure: Callable[[Exception], StoreError],
) -> Sequence[Sequence[Any]]:
    """The rows ``read`` returns, for a history or day counters reading on their own connection: on one of
    ``errors`` the connection is ``reset`` (the next read opens a fresh one) and read once more; a second failure
    raises ``failure(error)``."""
    try:
        return read()
    except errors:
        reset()
        try:
            return read()
        except errors as exc:
            reset()
            raise failure(exc) from None


def ref_day_bounds(day: str) -> tuple[str, str]:
    """The range of stored references that start with ``day`` + ``|`` (``|`` and ``}`` are adjacent in ASCII)."""
    return day + "|", day + "}"


def txn_from_row(row: Sequence[Any]) -> Txn:
    return Txn(
        key=row[0],
        op=parse_op(row[1]),
        pan=row[2],
        amount=int(row[3]),
        terminal_id=row[4],
        merchant_id=row[5],
        business_date=row[6],
        rrn=row[7],
        fingerprint=row[8],
        answer=answer_from_text(row[9]),
        status=TxnStatus(row[10]),
        original=row[11],
        auth_code=row[12],
        refunded=int(row[13]),
        effects=effects_from_text(row[14]),
        settled=bool(row[15]),
        ref=row[16],
        forced=bool(row[17]),
    )
