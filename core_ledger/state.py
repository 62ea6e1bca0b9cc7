"""The ledger's in-memory state and the one function that changes it: :meth:`LedgerState.apply`."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from core_ledger.daycounters import DayCounters
from core_ledger.history import TxnHistory
from core_ledger.model import (
    DAILY_DEBITS,
    PIN_FAILURES,
    Account,
    Card,
    DailyUsage,
    Effect,
    Entry,
    HoldChange,
    Merchant,
    PinFailure,
    RefundChange,
    StatusChange,
    Txn,
)


class StateError(Exception):
    """An effect does not fit the state (a bug, never bad input): the ledger must stop, not guess."""


@dataclasses.dataclass(slots=True)
class LedgerState:
    accounts: dict[str, Account] = dataclasses.field(default_factory=dict)
    cards: dict[str, Card] = dataclasses.field(default_factory=dict)
    merchants: dict[str, Merchant] = dataclasses.field(default_factory=dict)
    #: every transaction (or, for a serving ledger, the recent ones in memory: :mod:`core_ledger.history`)
    txns: TxnHistory = dataclasses.field(default_factory=TxnHistory)
    #: open holds: pre-authorisation key → (account, amount)
    holds: dict[str, tuple[str, int]] = dataclasses.field(default_factory=dict)
    #: Business days of card counters kept in memory (``None``: every one; :mod:`core_ledger.daycounters`).
    days_kept: dataclasses.InitVar[int | None] = None
    #: (PAN, business date) → debits so far, for daily limits
    daily: DayCounters = dataclasses.field(init=False)
    #: (PAN, business date) → wrong PINs reported that day, for the PIN-try limit
    pin_failures: DayCounters = dataclasses.field(init=False)

    def __post_init__(self, days_kept: int | None) -> None:
        self.daily = DayCounters(DAILY_DEBITS, self.txns, days_kept)
        self.pin_failures = DayCounters(PIN_FAILURES, self.txns, days_kept)

    def counters(self, kind: str) -> DayCounters:
        """The cards' day counters of one stored kind (:data:`~core_ledger.model.DAILY_DEBITS` or
        :data:`~core_ledger.model.PIN_FAILURES`), by (PAN, business date)."""
        return self.daily if kind == DAILY_DEBITS else self.pin_failures

    def counter_rows(self) -> Iterator[tuple[str, str, str, int]]:
        """(PAN, business date, kind, total) of every card counter, as ``card_counters`` stores them."""
        for kind in (DAILY_DEBITS, PIN_FAILURES):
            for (pan, day), total in self.counters(kind).items():
                yield pan, day, kind, total

    def read_counters(self, effects: tuple[Effect, ...]) -> None:
        """Bring into memory the card counters ``effects`` change whose day left memory (a reversal of an older
        day's purchase), so that applying them reads nothing: a read that fails then fails the decision, before
        anything changed. Raises what the store's read raises."""
        for effect in effects:
            if isinstance(effect, DailyUsage | PinFailure):
                self.counters(effect.KIND).get((effect.pan, effect.business_date))

    def add_txn(self, txn: Txn) -> None:
        """Record ``txn`` under its key (and its field-90 reference, if it has one)."""
        self.txns.add(txn)

    def misfit(self, effects: tuple[Effect, ...] | list[Effect]) -> str | None:
        """Why ``effects`` would not apply to the state as it is now (a hold released that is not open, a
        status changed from one the transaction no longer has, entries that do not balance), or ``None`` if
        they all apply. Changes nothing: the engine asks before it records anything."""
        if sum(e.amount for e in effects if isinstance(e, Entry)) != 0:
            return "entries do not sum to 0"
        holds = set(self.holds)
        statuses: dict[str, object] = {}
        for effect in effects:
            if isinstance(effect, HoldChange):
                if effect.placed == (effect.owner in holds):
                    return f"hold of {effect.owner} is {'already open' if effect.placed else 'not open'}"
                (holds.add if effect.placed else holds.discard)(effect.owner)
            elif isinstance(effect, StatusChange):
                txn = self.txns.get(effect.txn)
                current = statuses.get(effect.txn, txn.status if txn is not None else None)
                if current is not effect.old:
                    return f"{effect.txn} is {current}, not {effect.old}"
                statuses[effect.txn] = effect.new
            elif isinstance(effect, RefundChange) and effect.txn not in self.txns:
                return f"{effect.txn} is not known"
        return None

    def apply(self, effects: tuple[Effect, ...] | list[Effect]) -> None:
        total = sum(e.amount for e in effects if isinstance(e, Entry))
        if total != 0:
            raise StateError(f"entries of one transaction sum to {total}, not 0")
        for effect in effects:
            self._apply_one(effect)

    def _apply_one(self, effect: Effect) -> None:
        if isinstance(effect, Entry):
            self.accounts[effect.account_id].balance += effect.amount
        elif isinstance(effect, HoldChange):
            account = self.accounts[effect.account_id]
            if effect.placed:
                if effect.owner in self.holds:
                    raise StateError("hold placed twice")
                self.holds[effect.owner] = (effect.account_id, effect.amount)
                account.held += effect.amount
            else:
                if self.holds.pop(effect.owner, None) is None:
                    raise StateError("released a hold that is not open")
                account.held -= effect.amount
        elif isinstance(effect, StatusChange):
            txn = self.txns[effect.txn]
            if txn.status is not effect.old:
                raise StateError(f"status change {effect.old}→{effect.new} on a {txn.status} transaction")
            txn.status = effect.new
            self.txns.touch(effect.txn)
        elif isinstance(effect, RefundChange):
            self.txns[effect.txn].refunded += effect.delta
            self.txns.touch(effect.txn)
        elif isinstance(effect, DailyUsage | PinFailure):
            self.count(effect)

    def count(self, effect: DailyUsage | PinFailure) -> None:
        """Change a card's counter for its business day: debits (daily limits) or wrong PINs (the PIN-try limit)."""
        self.counters(effect.KIND).add(effect.pan, effect.business_date, effect.delta)
