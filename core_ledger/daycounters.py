"""The cards' day counters as the engine sees them: the newest business days in memory, older ones in the store.

A card's debits against its daily limit, and its wrong PINs, are counted per business day (``card_counters``,
one row per card, day and kind). The engine asks for the day a request carries (field 13), almost always the
newest day or the one before. A ledger serving for weeks must not keep every card's every day in memory, so
:class:`DayCounters` keeps the :data:`DAYS_KEPT` newest days (every day for the offline tools) and reads a card's
counter for an older day back from the store when it is asked for, as :mod:`core_ledger.history` does for
transactions, under the same rule:

- Only a day whose every change is durable leaves memory: a day carries the number of the last posting that
  changed it (:attr:`TxnHistory.queued` when it changed) and leaves once that posting is written
  (:attr:`TxnHistory.durable`). A read from the store therefore never misses a change that memory had.
- A day newer than every day known (in memory, or in the store when it was loaded) has nothing stored: it starts
  empty and whole. Any other day not in memory may have rows: a card's counter for it is read once (one indexed
  query on the store's read connection, on the caller's thread) and kept with its day until that day leaves again.
- Iterating counters that are not whole raises :class:`HistoryIncomplete`: the tools that need every counter load
  the store whole.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Final, Protocol

from core_ledger.history import HistoryIncomplete, TxnHistory

#: Business days whose counters a serving ledger keeps in memory: the newest and the two before it (a terminal
#: whose date is a day behind, around midnight, stays in memory).
DAYS_KEPT: Final = 3


class CounterReader(Protocol):
    """What day counters read back from the store (blocking, committed data only)."""

    def counter_total(self, kind: str, pan: str, day: str) -> int | None:
        """The stored total of one card's counter of ``kind`` for business date ``day`` (``None``: no row)."""
        ...


class DayCounters(Mapping[tuple[str, str], int]):
    """(PAN, business date) → total of one counter kind; see the module for what stays in memory. Compared with
    a dict, and iterated, only when whole."""

    def __init__(self, kind: str, postings: TxnHistory, days_kept: int | None = None) -> None:
        if days_kept is not None and days_kept < 1:
            raise ValueError(f"day counters keep at least one day, not {days_kept}")
        self.kind = kind
        self.days_kept = days_kept
        self.reader: CounterReader | None = None
        #: Counts of one card's counter read back from the store (for docs and tests).
        self.store_reads = 0
        self._postings = postings
        self._days: dict[str, dict[str, int]] = {}
        #: Days in memory with every card's counter (loaded whole, or begun after every day known).
        self._whole: set[str] = set()
        #: Day → the posting that last changed it.
        self._changed: dict[str, int] = {}
        #: The newest day known, in memory or in the store: a newer one has nothing stored.
        self._newest = ""
        #: Days that left memory (then a day not in memory may have rows).
        self._left = False

    # -- reading -------------------------------------------------------------------------------------------

    def get(self, slot: tuple[str, str], default: int = 0) -> int:  # type: ignore[override]
        """The counter, read from the store if its day is not whole in memory; ``default`` when there is none."""
        total = self._lookup(*slot)
        return default if total is None else total

    def __getitem__(self, slot: tuple[str, str]) -> int:
        total = self._lookup(*slot)
        if total is None:
            raise KeyError(slot)
        return total

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return (slot for slot, _ in self.items())

    def __len__(self) -> int:
        return sum(1 for _ in self.items())

    def _lookup(self, pan: str, day: str) -> int | None:
        cards = self._days.get(day)
        if cards is not None:
            total = cards.get(pan)
            if total is not None or day in self._whole:
                return total
        elif self._never_stored(day):
            return None
        return self._read(pan, day)

    def _never_stored(self, day: str) -> bool:
        """Whether the store can have nothing of ``day`` that is not in memory: no day ever left memory, or
        ``day`` is newer than every day known."""
        return day > self._newest or not self._left

    @property
    def whole(self) -> bool:
        """Every counter is in memory."""
        return not self._left

    def items(self) -> Iterator[tuple[tuple[str, str], int]]:  # type: ignore[override]
        if self._left:
            raise HistoryIncomplete("older days' counters are only in the store")
        for day, cards in self._days.items():
            for pan, total in cards.items():
                yield (pan, day), total

    def days_in_memory(self) -> list[str]:
        return sorted(self._days)

    def _read(self, pan: str, day: str) -> int | None:
        """One card's counter for a day not whole in memory, from the store (``None``: no row); kept with its day
        from now on."""
        if self.reader is None:
            raise HistoryIncomplete("older days' counters are only in the store, and these have no reader")
        total = self.reader.counter_total(self.kind, pan, day)
        self.store_reads += 1
        self._days.setdefault(day, {})[pan] = 0 if total is None else total
        self._changed.setdefault(day, 0)  # durable as read; it may leave at the next change
        return total

    # -- changing ------------------------------------------------------------------------------------------

    def note_stored_day(self, day: str) -> None:
        """A day the store has counters for that stays out of memory (start-up keeps the newest days only)."""
        self._newest = max(self._newest, day)
        self._left = True

    def add(self, pan: str, day: str, delta: int) -> None:
        """Change one card's counter by ``delta`` (by the posting being queued: :attr:`TxnHistory.queued`)."""
        if day not in self._days and self._never_stored(day):
            self._days[day] = {}
            self._whole.add(day)
        total = self.get((pan, day))  # a day not whole reads the card's stored total first
        self._days[day][pan] = total + delta
        self._changed[day] = self._postings.queued
        self._newest = max(self._newest, day)
        self._leave_old_days()

    def load(self, pan: str, day: str, total: int) -> None:
        """A stored counter of a day the store's load reads whole (start-up: durable as it is)."""
        self._days.setdefault(day, {})[pan] = total
        self._whole.add(day)
        self._changed.setdefault(day, 0)
        self._newest = max(self._newest, day)

    def _leave_old_days(self) -> None:
        """Send days beyond the newest :attr:`days_kept` whose changes are all written to the store only."""
        if self.days_kept is None or len(self._days) <= self.days_kept:
            return
        durable = self._postings.durable
        for day in sorted(self._days)[: -self.days_kept]:
            if self._changed.get(day, 0) <= durable:
                del self._days[day]
                self._whole.discard(day)
                self._changed.pop(day, None)
                self._left = True
