"""The ledger's transactions as its engine sees them: the most recent in memory, the rest in the store.

A ledger serving for hours must not keep every transaction it ever posted in memory (about 1.5 KB each: an hour
at 1,000 purchases/s would be 5 GB). :class:`TxnHistory` keeps the ``keep`` most recently changed ones
(:data:`RECENT_TXNS_KEPT` by default for a serving ledger, every one for the offline tools) and reads an older one
back from the store when a lookup misses:

- Only a transaction whose every change is durable leaves memory: the service numbers each posting it queues
  (:attr:`TxnHistory.queued`) and counts the postings written (:attr:`TxnHistory.durable`); a transaction
  carries the number of the last posting that changed it, and leaves once that one is written. A read from the
  store therefore never misses a change that memory had.
- Most lookups are of keys that were never posted (every new purchase asks whether its key is a repeat): a
  :class:`KeyFilter` (a Bloom filter over the keys that left memory, fixed size) answers "not in the store"
  without a read for all but ~0.1 % of them up to ~4 million keys outside memory, and falls to a read a lookup
  more often beyond that, never wrongly.
- A read is one indexed query on the store's own read connection, made on the caller's thread (the event loop):
  rare (a repeat, reversal, void or refund of a transaction older than the recent ones), and it never waits for
  the writer's commit (SQLite WAL; PostgreSQL read committed). What it reads comes back into memory as recent.
- Iterating a history that is not whole (:meth:`TxnHistory.values` and the like) raises
  :class:`HistoryIncomplete`: the tools that need every transaction load the store whole.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from typing import Final, Protocol

from core_ledger.model import Txn, ref_day

#: How many transactions a serving ledger keeps in memory (about 150 MB at most); older ones are read back on a miss.
RECENT_TXNS_KEPT: Final = 100_000
#: The key filter's size: 2**26 bits (8 MiB), probed 5 times per key.
FILTER_BITS_LOG2: Final = 26
FILTER_PROBES: Final = 5


class HistoryIncomplete(RuntimeError):
    """Every transaction was asked for, but only the recent ones are in memory (load the store whole instead)."""


class TxnReader(Protocol):
    """What a history reads back from the store (blocking, committed data only)."""

    def txns_by_key(self, keys: Sequence[str]) -> list[Txn]:
        """The stored transactions under ``keys`` (those that exist)."""
        ...

    def txns_by_ref_day(self, day: str) -> list[Txn]:
        """The stored transactions whose field-90 reference starts with ``day`` (see :func:`ref_day`), oldest
        first."""
        ...


class KeyFilter:
    """A Bloom filter of transaction keys: ``key in f`` is False only for a key never added."""

    __slots__ = ("_bits", "_mask")

    def __init__(self, bits_log2: int = FILTER_BITS_LOG2) -> None:
        self._bits = bytearray(1 << (bits_log2 - 3))
        self._mask = (1 << bits_log2) - 1

    def _probes(self, key: str) -> range:
        """The bits of ``key``: double hashing over the two halves of the string's own hash (computed once per
        string and cached by Python; salted per process, which suits a filter that lives in one process)."""
        digest = hash(key) & 0xFFFF_FFFF_FFFF_FFFF
        first, step = digest & 0xFFFF_FFFF, (digest >> 32) | 1
        return range(first, first + FILTER_PROBES * step, step)

    def add(self, key: str) -> None:
        bits, mask = self._bits, self._mask
        for probe in self._probes(key):
            bit = probe & mask
            bits[bit >> 3] |= 1 << (bit & 7)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        bits, mask = self._bits, self._mask
        for probe in self._probes(key):
            bit = probe & mask
            if not bits[bit >> 3] & (1 << (bit & 7)):
                return False
        return True


class TxnHistory(Mapping[str, Txn]):
    """Transactions by key: the recent ones in memory, the rest read back from :attr:`reader` (see the module)."""

    def __init__(self, keep: int | None = None) -> None:
        if keep is not None and keep < 1:
            raise ValueError(f"a history keeps at least one transaction, not {keep}")
        self.keep = keep
        self.reader: TxnReader | None = None
        #: Postings queued so far (the service counts each before it changes memory) and postings written.
        self.queued = 0
        self.durable = 0
        #: Lookups that read the store (for docs and tests).
        self.store_reads = 0
        self._recent: dict[str, Txn] = {}
        #: field-90 reference without its time → keys of the recent transactions carrying it, oldest first.
        self._by_ref: dict[str, list[str]] = {}
        # Only a bounded history tracks changes: key → the posting that last changed it; and the order they
        # changed in (a key changed again appears again; its earlier place is then stale).
        self._changed: dict[str, int] = {}
        self._order: deque[str] = deque()
        self._order_stamps: deque[int] = deque()
        self._outside = 0  # transactions in the store, not in memory
        self._filter: KeyFilter | None = None

    # -- reading -------------------------------------------------------------------------------------------

    @property
    def whole(self) -> bool:
        """Every transaction is in memory."""
        return not self._outside

    @property
    def in_memory(self) -> int:
        """Transactions held in memory now."""
        return len(self._recent)

    def get(self, key: str, default: Txn | None = None) -> Txn | None:  # type: ignore[override]
        txn = self._recent.get(key)
        if txn is not None or not self._outside:
            return txn if txn is not None else default
        found = self._read(key)
        return found if found is not None else default

    def __getitem__(self, key: str) -> Txn:
        txn = self.get(key)
        if txn is None:
            raise KeyError(key)
        return txn

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def __len__(self) -> int:
        """Every transaction, in memory or not."""
        return len(self._recent) + self._outside

    def __iter__(self) -> Iterator[str]:
        if self._outside:
            raise HistoryIncomplete(f"{self._outside} transaction(s) are only in the store")
        return iter(self._recent)

    def by_ref_day(self, day: str) -> list[Txn]:
        """The transactions whose field-90 reference starts with ``day``, oldest first."""
        keys = self._by_ref.get(day, ())
        if not self._outside:
            return [self._recent[key] for key in keys]
        stored = self._reader().txns_by_ref_day(day)
        self.store_reads += 1
        merged = {txn.key: self._recent.get(txn.key) or self._adopt(txn) for txn in stored}
        for key in keys:  # not written yet: newer than anything stored
            merged.setdefault(key, self._recent[key])
        return list(merged.values())

    def _read(self, key: str) -> Txn | None:
        """``key`` from the store unless the filter rules it out; found, it comes back into memory."""
        if self._filter is None or key not in self._filter:
            return None
        self.store_reads += 1
        found = self._reader().txns_by_key([key])
        return self._adopt(found[0]) if found else None

    def _reader(self) -> TxnReader:
        if self.reader is None:
            raise HistoryIncomplete("older transactions are only in the store, and this history has no reader")
        return self.reader

    # -- changing ------------------------------------------------------------------------------------------

    def add(self, txn: Txn) -> None:
        """Record a new transaction (changed by the posting being queued: :attr:`queued`)."""
        self._insert(txn)
        self._stamp(txn.key, self.queued)

    def __setitem__(self, key: str, txn: Txn) -> None:
        if key != txn.key:
            raise ValueError(f"transaction {txn.key} recorded under {key}")
        self.add(txn)

    def add_outside(self, key: str) -> None:
        """A stored transaction that stays out of memory (loading the most recent ones only)."""
        if self._filter is None:
            self._filter = KeyFilter()
        self._filter.add(key)
        self._outside += 1

    def touch(self, key: str) -> None:
        """The transaction under ``key`` (in memory) is changed by the posting being queued."""
        self._stamp(key, self.queued)

    def _adopt(self, txn: Txn) -> Txn:
        """A stored transaction back in memory (durable as it is)."""
        self._outside -= 1
        self._insert(txn)
        self._stamp(txn.key, 0)
        return txn

    def _insert(self, txn: Txn) -> None:
        self._recent[txn.key] = txn
        if txn.ref:
            self._by_ref.setdefault(ref_day(txn.ref), []).append(txn.key)

    def _stamp(self, key: str, posting: int) -> None:
        if self.keep is None or self._changed.get(key) == posting:
            return
        self._changed[key] = posting
        self._order.append(key)
        self._order_stamps.append(posting)
        if len(self._recent) > self.keep:
            self._evict()

    def _evict(self) -> None:
        """Send the oldest transactions whose changes are all durable to the store only, down to :attr:`keep`."""
        assert self.keep is not None
        recent, changed, order, stamps = self._recent, self._changed, self._order, self._order_stamps
        while len(recent) > self.keep and order:
            key, stamp = order[0], stamps[0]
            if changed.get(key) != stamp:  # changed again since: its later place counts
                order.popleft()
                stamps.popleft()
                continue
            if stamp > self.durable:
                return  # the oldest change is not written yet: nothing after it is either
            order.popleft()
            stamps.popleft()
            del changed[key]
            txn = recent.pop(key)
            if txn.ref:
                day = ref_day(txn.ref)
                keys = self._by_ref[day]
                keys.remove(key)
                if not keys:
                    del self._by_ref[day]
            self.add_outside(key)
