"""A serving ledger keeps the cards' day counters of its newest business days in memory and reads an older day's
back from the store when a request names that day (core_ledger.daycounters) — on SQLite and PostgreSQL. A day
leaves memory only once every change to it is written; the limits hold on every day, before and after a restart."""

from __future__ import annotations

import dataclasses

import pytest

from core_ledger.api import LedgerOp, LedgerRequest
from core_ledger.daycounters import DAYS_KEPT
from core_ledger.engine import LedgerEngine
from core_ledger.history import HistoryIncomplete
from core_ledger.store import LedgerStore
from tests.core_ledger.conftest import StoreFactory, StoreOpener
from tests.core_ledger.helpers import GOOD, LIMITED, NOW, request, seeded_state
from wire.constants import ResponseCode

KEEP_TXNS = 1_000  # a serving ledger's bounded load (its counters: the newest DAYS_KEPT days)
#: Four business days before NOW (2026-11-24), oldest first, as field 13 carries them.
DAYS = ("1118", "1119", "1120", "1121")


def on_day(req: LedgerRequest, mmdd: str) -> LedgerRequest:
    return dataclasses.replace(req, local_date=mmdd, transmission=mmdd + req.transmission[4:])


def seeded(store: LedgerStore) -> LedgerEngine:
    state = seeded_state()
    store.save_static(state)
    store.commit([((t,), t.effects) for t in state.txns.values()])
    store.close()
    return LedgerEngine(state, clock=lambda: NOW)


def post(store: LedgerStore, engine: LedgerEngine, req: LedgerRequest, *, written: bool = True) -> ResponseCode:
    """As the ledger service posts: the posting numbered before memory changes, counted durable once written."""
    history = engine.state.txns
    decision = engine.decide(req)
    history.queued += 1
    engine.commit(decision)
    if written:
        store.commit([(decision.records, decision.effects)])
        history.durable = history.queued
    return decision.answer.response_code


def serving(store: LedgerStore) -> LedgerEngine:
    return LedgerEngine(store.load(keep=KEEP_TXNS), clock=lambda: NOW)


def a_serving_ledger(store_factory: StoreFactory) -> tuple[StoreOpener, LedgerStore, LedgerEngine]:
    """A fresh seeded store, reopened, and a serving ledger's engine on it."""
    opener = store_factory()
    seeded(opener())
    store = opener()
    return opener, store, serving(store)


def the_later_days(store: LedgerStore, engine: LedgerEngine, pan: str, *, written: bool = True) -> None:
    """A purchase of 100 on each of the three newer days: the oldest day is then beyond the days kept."""
    for mmdd in DAYS[1:]:
        assert post(store, engine, on_day(request(LedgerOp.PURCHASE, pan, 100), mmdd), written=written) is (
            ResponseCode.APPROVED
        )


def test_the_newest_days_stay_and_an_older_one_is_read_back_when_named(store_factory: StoreFactory) -> None:
    _, store, engine = a_serving_ledger(store_factory)
    assert post(store, engine, on_day(request(LedgerOp.PURCHASE, LIMITED, 4_000), DAYS[0])) is ResponseCode.APPROVED
    the_later_days(store, engine, LIMITED)
    daily = engine.state.daily
    assert daily.days_in_memory() == ["20261119", "20261120", "20261121"] and DAYS_KEPT == 3
    with pytest.raises(HistoryIncomplete):
        dict(daily.items())

    # the oldest day's 4,000 against LIMITED's 5,000 daily limit comes back from the store
    over = on_day(request(LedgerOp.PURCHASE, LIMITED, 1_001), DAYS[0])
    assert post(store, engine, over) is ResponseCode.EXCEEDS_AMOUNT_LIMIT
    assert daily.store_reads == 1
    assert post(store, engine, on_day(request(LedgerOp.PURCHASE, LIMITED, 1_000), DAYS[0])) is ResponseCode.APPROVED
    assert "20261118" in daily.days_in_memory()  # changed: it stays until that change is written
    assert post(store, engine, on_day(request(LedgerOp.PURCHASE, GOOD, 100), DAYS[3])) is ResponseCode.APPROVED
    assert daily.days_in_memory() == ["20261119", "20261120", "20261121"]  # written: it left at the next change
    assert post(store, engine, on_day(request(LedgerOp.PURCHASE, LIMITED, 1), DAYS[0])) is (
        ResponseCode.EXCEEDS_AMOUNT_LIMIT
    )
    assert daily.store_reads == 2
    store.close()


def test_a_day_whose_change_is_not_written_stays_in_memory(store_factory: StoreFactory) -> None:
    _, store, engine = a_serving_ledger(store_factory)
    first = on_day(request(LedgerOp.PURCHASE, LIMITED, 4_000), DAYS[0])
    assert post(store, engine, first, written=False) is ResponseCode.APPROVED  # queued, its commit still running
    the_later_days(store, engine, GOOD, written=False)
    over = on_day(request(LedgerOp.PURCHASE, LIMITED, 1_001), DAYS[0])
    assert post(store, engine, over, written=False) is ResponseCode.EXCEEDS_AMOUNT_LIMIT
    daily = engine.state.daily
    assert "20261118" in daily.days_in_memory()  # the store does not have it yet: memory is the only truth
    assert daily.store_reads == 0
    store.close()


def test_a_restart_loads_the_newest_days_and_reads_older_ones_on_demand(store_factory: StoreFactory) -> None:
    opener, store, engine = a_serving_ledger(store_factory)
    assert post(store, engine, on_day(request(LedgerOp.PURCHASE, LIMITED, 4_000), DAYS[0])) is ResponseCode.APPROVED
    for _ in range(2):  # two wrong PINs on the oldest day: the third is the last one allowed (75 from then on)
        assert post(store, engine, on_day(request(LedgerOp.PIN_FAILURE, GOOD), DAYS[0])) is ResponseCode.INCORRECT_PIN
    the_later_days(store, engine, LIMITED)
    store.close()

    store = opener()
    engine = serving(store)  # a restart: the newest three days loaded, the oldest left in the store
    assert engine.state.daily.days_in_memory() == ["20261119", "20261120", "20261121"]
    over = on_day(request(LedgerOp.PURCHASE, LIMITED, 1_001), DAYS[0])
    assert post(store, engine, over) is ResponseCode.EXCEEDS_AMOUNT_LIMIT
    third = on_day(request(LedgerOp.PIN_FAILURE, GOOD), DAYS[0])
    assert post(store, engine, third) is ResponseCode.PIN_TRIES_EXCEEDED
    assert (engine.state.daily.store_reads, engine.state.pin_failures.store_reads) == (1, 1)
    store.close()

    store = opener()
    whole = store.load()  # an offline tool: every day
    assert dict(whole.daily.items()) == {
        (LIMITED, "20261118"): 4_000,
        (LIMITED, "20261119"): 100,
        (LIMITED, "20261120"): 100,
        (LIMITED, "20261121"): 100,
    }
    assert dict(whole.pin_failures.items()) == {(GOOD, "20261118"): 3}
    store.close()


def test_a_reversal_of_an_older_days_purchase_gives_that_day_its_limit_back(store_factory: StoreFactory) -> None:
    opener, store, engine = a_serving_ledger(store_factory)
    first = on_day(request(LedgerOp.PURCHASE, LIMITED, 4_000), DAYS[0])
    assert post(store, engine, first) is ResponseCode.APPROVED
    the_later_days(store, engine, GOOD)
    assert "20261118" not in engine.state.daily.days_in_memory()

    reversal = on_day(request(LedgerOp.REVERSAL, LIMITED, 4_000, original=first), DAYS[0])
    decision = engine.decide(reversal)
    engine.state.read_counters(decision.effects)  # as the service does before applying: the day's counter read
    assert engine.state.daily.store_reads == 1
    engine.state.txns.queued += 1
    engine.commit(decision)
    store.commit([(decision.records, decision.effects)])
    engine.state.txns.durable = engine.state.txns.queued
    assert decision.answer.response_code is ResponseCode.APPROVED
    assert engine.state.daily.get((LIMITED, "20261118")) == 0
    assert post(store, engine, on_day(request(LedgerOp.PURCHASE, LIMITED, 5_000), DAYS[0])) is ResponseCode.APPROVED
    store.close()
    store = opener()
    assert dict(store.load().daily.items())[(LIMITED, "20261118")] == 5_000
    store.close()
