"""A serving ledger keeps only its recent transactions in memory (core_ledger/history.py): older ones are read back
from the store when a repeat, reversal, void or refund names them, and a transaction leaves memory only once every
change to it is durable. Real SQLite files (and the real host link over loopback TCP)."""

from __future__ import annotations

import gc
import sqlite3
from pathlib import Path

import anyio
import pytest

from acqkit.config import AcqsimConfig
from core_ledger.api import LedgerOp, LedgerRequest
from core_ledger.check import check_store
from core_ledger.client import LedgerClient
from core_ledger.engine import LedgerEngine
from core_ledger.history import HistoryIncomplete, KeyFilter, TxnHistory
from core_ledger.model import TxnStatus
from core_ledger.server import serve
from core_ledger.setup import open_service
from core_ledger.sql import load_state
from core_ledger.sqlite_store import SqliteStore
from tests.core_ledger.helpers import GOOD, NOW, key_of, request, seeded_state
from wire.constants import ResponseCode

HOST = "127.0.0.1"
KEEP = 3


def _store_with_purchases(path: Path, count: int) -> tuple[SqliteStore, list[LedgerRequest]]:
    """A store seeded with the test cards and ``count`` approved purchases, each committed as it is decided."""
    store = SqliteStore(path)
    state = seeded_state()
    store.save_static(state)
    store.commit([((t,), t.effects) for t in state.txns.values()])
    engine = LedgerEngine(state, clock=lambda: NOW)
    buys = [request(LedgerOp.PURCHASE, GOOD, 100 + i) for i in range(count)]
    for buy in buys:
        decision = engine.decide(buy)
        assert decision.answer.response_code is ResponseCode.APPROVED
        engine.commit(decision)
        store.commit([(decision.records, decision.effects)])
    return store, buys


def _decide(engine: LedgerEngine, req: LedgerRequest) -> tuple[ResponseCode, tuple[object, ...]]:
    """Decide and apply ``req`` as the service does (numbered as the next queued posting), not yet written."""
    decision = engine.decide(req)
    engine.state.txns.queued += 1
    engine.commit(decision)
    return decision.answer.response_code, (decision.records, decision.effects)


def test_a_change_not_yet_durable_keeps_its_transaction_in_memory(tmp_path: Path) -> None:
    store, buys = _store_with_purchases(tmp_path / "ledger.sqlite3", 8)
    state = store.load(keep=KEEP)
    history = state.txns
    assert history.in_memory == KEEP and not history.whole
    engine = LedgerEngine(state, clock=lambda: NOW)
    oldest = buys[0]
    balance_before = state.accounts[state.cards[GOOD].account_id].balance

    # The oldest purchase is read back from the store and reversed; the reversal is queued, not yet written.
    reads = history.store_reads
    code, reversal = _decide(engine, request(LedgerOp.REVERSAL, GOOD, oldest.amount, original=oldest))
    assert code is ResponseCode.APPROVED
    assert history.store_reads > reads
    # Many new purchases, none written: memory grows past KEEP rather than let the reversed one go, since the
    # store still says "posted" for it.
    pending = [reversal] + [_decide(engine, request(LedgerOp.PURCHASE, GOOD, 7))[1] for _ in range(2 * KEEP)]
    assert history.in_memory > KEEP
    # So a void of it sees "reversed" (12), not the store's stale "posted" (which would pay it back twice).
    code, void = _decide(engine, request(LedgerOp.VOID, GOOD, oldest.amount, original=oldest))
    assert code is ResponseCode.INVALID_TRANSACTION
    assert history[key_of(oldest)].status is TxnStatus.REVERSED

    # Written at last: the next posting brings memory back to KEEP.
    store.commit([*pending, void])  # type: ignore[list-item]
    history.durable = history.queued
    _decide(engine, request(LedgerOp.BALANCE, GOOD))
    assert history.in_memory == KEEP
    assert store.load().txns[key_of(oldest)].status is TxnStatus.REVERSED
    spent = 7 * 2 * KEEP
    assert state.accounts[state.cards[GOOD].account_id].balance == balance_before + oldest.amount - spent
    assert check_store(store) == []
    store.close()


def test_a_bounded_load_counts_the_same_day_as_a_whole_one(tmp_path: Path) -> None:
    store, _ = _store_with_purchases(tmp_path / "ledger.sqlite3", 10)
    engine = LedgerEngine(store.load(), clock=lambda: NOW)
    wrong_pin = engine.decide(request(LedgerOp.PIN_FAILURE, GOOD))
    assert wrong_pin.answer.response_code is ResponseCode.INCORRECT_PIN
    store.commit([(wrong_pin.records, wrong_pin.effects)])
    later = [engine.decide(request(LedgerOp.PURCHASE, GOOD, 5)) for _ in range(3)]
    store.commit([(d.records, d.effects) for d in later])  # the wrong PIN is no longer among the newest
    whole, bounded = store.load(), store.load(keep=2)
    assert bounded.daily == whole.daily and bounded.daily
    assert bounded.pin_failures == whole.pin_failures == {(GOOD, "20261124"): 1}
    assert len(bounded.txns) == len(whole.txns)  # the count (auth codes continue from it) is of every one
    assert bounded.txns.in_memory == 2
    with pytest.raises(HistoryIncomplete):
        list(bounded.txns.values())  # a tool needing every transaction must load the store whole
    store.close()


def test_a_key_filter_never_forgets_a_key() -> None:
    keys = [f"48009999|{n:012d}" for n in range(5_000)]
    small = KeyFilter(bits_log2=16)
    for key in keys:
        small.add(key)
    assert all(key in small for key in keys)
    others = sum(f"48009999|{n:012d}X" in small for n in range(5_000))
    assert others < 500  # a few false "maybe"s (each only costs a read), far from all


def test_a_history_refuses_to_keep_nothing() -> None:
    with pytest.raises(ValueError, match="at least one"):
        TxnHistory(0)


@pytest.mark.anyio
async def test_old_transactions_are_found_over_the_host_link(tmp_path: Path) -> None:
    """A ledger keeping 3 transactions, 12 purchases, then what names the old ones: a repeat (its first answer,
    nothing posted), a void by RRN and its repeat, partial refunds up to the amount, and a reversal that names its
    original by field 90 only; then a restart from the store. Money moves exactly once each time."""
    db = str(tmp_path / "ledger.sqlite3")
    config = AcqsimConfig.default(data_dir=tmp_path)
    service = open_service(db, config, keep_txns=KEEP)
    state = service.state
    account = state.accounts[state.cards[GOOD].account_id]
    opening = account.balance
    buys = [request(LedgerOp.PURCHASE, GOOD, 1_000 + i) for i in range(12)]
    async with anyio.create_task_group() as tg:
        port = await tg.start(lambda task_status: serve(HOST, 0, service=service, task_status=task_status))
        async with LedgerClient(HOST, port, timeout=10.0) as ledger:
            answers = [await ledger.submit(buy) for buy in buys]
            assert {a.response_code for a in answers} == {ResponseCode.APPROVED}
            assert state.txns.in_memory <= KEEP + 2  # the last postings may not be written yet
            reads = state.txns.store_reads

            again = await ledger.submit(buys[0])
            assert (again.response_code, again.auth_code) == (ResponseCode.APPROVED, answers[0].auth_code)
            void = request(LedgerOp.VOID, GOOD, buys[1].amount, original=buys[1])
            assert (await ledger.submit(void)).response_code is ResponseCode.APPROVED
            assert (await ledger.submit(void)).response_code is ResponseCode.APPROVED  # a repeat
            refunds = [request(LedgerOp.REFUND, GOOD, 600, original=buys[2]) for _ in range(2)]
            codes = [(await ledger.submit(refund)).response_code for refund in refunds]
            assert codes == [ResponseCode.APPROVED, ResponseCode.INVALID_AMOUNT]  # 1,200 > 1,002
            reversal = request(LedgerOp.REVERSAL, GOOD, buys[3].amount, original=buys[3], by_rrn=False)
            assert (await ledger.submit(reversal)).response_code is ResponseCode.APPROVED
            assert state.txns.store_reads > reads
        tg.cancel_scope.cancel()
    expected = opening - sum(b.amount for b in buys) + buys[1].amount + 600 + buys[3].amount
    assert account.balance == expected
    assert check_store(service.store) == []
    service.store.close()

    restarted = open_service(db, keep_txns=KEEP)
    whole = restarted.store.load()
    assert restarted.state.accounts[account.account_id].balance == expected
    assert whole.txns[key_of(buys[1])].status is TxnStatus.VOIDED
    assert whole.txns[key_of(buys[3])].status is TxnStatus.REVERSED
    assert whole.txns[key_of(buys[2])].refunded == 600
    assert restarted.state.txns[key_of(buys[3])].status is TxnStatus.REVERSED  # read back after the restart
    restarted.store.close()


@pytest.mark.anyio
async def test_a_read_that_fails_is_tried_again_then_answered_96_and_the_rest_go_on(tmp_path: Path) -> None:
    """The history's read connection lost: opened afresh, the repeat is answered as before. The store's file moved
    away (its read connection cannot open it): that request is answered 96, nothing changes, and requests that
    need no read are served on."""
    db = tmp_path / "ledger.sqlite3"
    service = open_service(str(db), AcqsimConfig.default(data_dir=tmp_path), keep_txns=KEEP)
    state = service.state
    buys = [request(LedgerOp.PURCHASE, GOOD, 500 + i) for i in range(2 * KEEP)]
    async with anyio.create_task_group() as tg:
        port = await tg.start(lambda task_status: serve(HOST, 0, service=service, task_status=task_status))
        async with LedgerClient(HOST, port, timeout=10.0) as ledger:
            first = [await ledger.submit(buy) for buy in buys]
            assert (await ledger.submit(buys[0])).auth_code == first[0].auth_code  # read back: opens the reader
            store = service.store
            assert isinstance(store, SqliteStore) and store._reads is not None
            store._reads.close()  # the connection is lost under the ledger
            assert (await ledger.submit(buys[1])).auth_code == first[1].auth_code  # opened afresh, once
            balance = state.accounts[state.cards[GOOD].account_id].balance
            moved = db.rename(tmp_path / "moved.sqlite3")  # the writer keeps its open file; a new reader cannot
            store._reads.close()
            void = request(LedgerOp.VOID, GOOD, buys[2].amount, original=buys[2])
            assert (await ledger.submit(void)).response_code is ResponseCode.SYSTEM_MALFUNCTION
            assert state.accounts[state.cards[GOOD].account_id].balance == balance  # nothing changed
            assert not service.failed
            fresh = request(LedgerOp.PURCHASE, GOOD, 7)
            assert (await ledger.submit(fresh)).response_code is ResponseCode.APPROVED  # the others go on
            moved.rename(db)
            assert (await ledger.submit(void)).response_code is ResponseCode.APPROVED  # asked again: served
        tg.cancel_scope.cancel()
    assert check_store(service.store) == []
    service.store.close()


def test_a_load_runs_without_the_cyclic_collector_and_leaves_it_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    store, _ = _store_with_purchases(path, 3)
    store.close()
    db = sqlite3.connect(path)
    seen: list[bool] = []

    def rows(sql: str) -> sqlite3.Cursor:
        seen.append(gc.isenabled())  # as each query of the load runs
        return db.execute(sql)

    assert len(load_state(rows, keep=2).txns) == 3 + len(seeded_state().txns)
    assert seen and not any(seen) and gc.isenabled()
    gc.disable()
    try:
        load_state(rows)
        assert not gc.isenabled()  # a caller that had it off keeps it off
    finally:
        gc.enable()
    db.close()
