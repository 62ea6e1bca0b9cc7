"""The cards' day counters in the store (``card_counters``): each commit keeps them with its postings, a start-up
reads them instead of every transaction's effects, and a store written before the table existed gets it, filled
from its transactions, when it is opened — on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from core_ledger.api import LedgerOp
from core_ledger.check import check_store
from core_ledger.engine import LedgerEngine
from core_ledger.sqlite_store import SqliteStore
from core_ledger.store import LedgerStore
from tests.core_ledger.conftest import StoreFactory
from tests.core_ledger.helpers import GOOD, LIMITED, NOW, request, seeded_state
from wire.constants import ResponseCode
from wire.masking import mask_pan

DAY = NOW.strftime("%Y%m%d")


def _purchase(store: LedgerStore, engine: LedgerEngine, amount: int) -> ResponseCode:
    decision = engine.decide(request(LedgerOp.PURCHASE, LIMITED, amount))
    engine.commit(decision)
    store.commit([(decision.records, decision.effects)])
    return decision.answer.response_code


def _a_day_of_traffic(store: LedgerStore) -> None:
    """Debits against LIMITED's 5,000 daily limit (one reversed), and a wrong PIN on GOOD."""
    state = seeded_state()
    store.save_static(state)
    store.commit([((t,), t.effects) for t in state.txns.values()])
    engine = LedgerEngine(state, clock=lambda: NOW)
    first = request(LedgerOp.PURCHASE, LIMITED, 3_000)
    for req in [
        first,
        request(LedgerOp.REVERSAL, LIMITED, 3_000, original=first),
        request(LedgerOp.PURCHASE, LIMITED, 4_000),
        request(LedgerOp.PIN_FAILURE, GOOD),
    ]:
        decision = engine.decide(req)
        assert decision.answer.response_code is not ResponseCode.EXCEEDS_AMOUNT_LIMIT
        engine.commit(decision)
        store.commit([(decision.records, decision.effects)])


def _behind_the_ledger(store: LedgerStore, sql: str) -> None:
    """Run ``sql`` on the store's own connection, as another program would on the database."""
    db = store._db  # type: ignore[attr-defined]  # SqliteStore and PostgresStore both keep one
    db.execute(sql)
    if hasattr(db, "commit"):
        db.commit()  # psycopg: in a transaction; sqlite: autocommit, a no-op


def test_counters_are_read_back_as_committed_and_limit_the_day_after_a_restart(store_factory: StoreFactory) -> None:
    opener = store_factory()
    store = opener()
    _a_day_of_traffic(store)
    store.close()

    store = opener()
    state = store.load(keep=1)  # the counters come from their table, not from the transactions
    assert state.daily == {(LIMITED, DAY): 4_000} and state.pin_failures == {(GOOD, DAY): 1}
    engine = LedgerEngine(state, clock=lambda: NOW)
    assert _purchase(store, engine, 1_001) is ResponseCode.EXCEEDS_AMOUNT_LIMIT
    assert _purchase(store, engine, 1_000) is ResponseCode.APPROVED
    store.close()


def test_a_store_from_before_the_counters_gets_them_from_its_transactions(store_factory: StoreFactory) -> None:
    opener = store_factory()
    store = opener()
    _a_day_of_traffic(store)
    _behind_the_ledger(store, "DROP TABLE card_counters")  # as a store written before the table existed
    store.close()

    store = opener()  # opened by this acqsim: the table is made and filled in one transaction
    state = store.load()
    assert state.daily == {(LIMITED, DAY): 4_000} and state.pin_failures == {(GOOD, DAY): 1}
    engine = LedgerEngine(state, clock=lambda: NOW)
    assert _purchase(store, engine, 1_001) is ResponseCode.EXCEEDS_AMOUNT_LIMIT
    store.close()
    store = opener()
    assert store.load(keep=1).daily == {(LIMITED, DAY): 4_000}  # filled once: opening again adds nothing
    store.close()


def test_the_books_check_finds_a_counter_its_transactions_do_not_add_up_to(store_factory: StoreFactory) -> None:
    opener = store_factory()
    store = opener()
    _a_day_of_traffic(store)
    assert check_store(store) == []
    _behind_the_ledger(store, "UPDATE card_counters SET total = total + 1 WHERE kind = 'D'")
    assert check_store(store) == [
        f"card {mask_pan(LIMITED)} on {DAY}: counter D is 4001, its transactions add up to 4000"
    ]
    store.close()


def test_a_store_with_its_counters_opens_while_another_process_writes(tmp_path: Path) -> None:
    """An offline tool opens the store of a serving ledger mid-commit: nothing to create, so no write lock to wait
    for (before, every open took it for the counters' check)."""
    path = tmp_path / "ledger.sqlite3"
    SqliteStore(path).close()
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # a ledger's commit in progress
    try:
        store = SqliteStore(path)  # waiting for the lock would end in "database is locked" after 10 s
        assert store.load().daily == {}
        store.close()
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_a_store_from_before_drops_the_index_no_query_uses_and_a_new_one_never_has_it(tmp_path: Path) -> None:
    """``txns_by_rrn`` cost every posting a write and served no query (a transaction is found by its key): a
    store written by an older acqsim loses it when opened, its transactions kept; a new store never has it."""

    def indexes(path: Path) -> set[str]:
        with sqlite3.connect(path) as db:
            return {str(name) for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}

    path = tmp_path / "ledger.sqlite3"
    store = SqliteStore(path)
    engine = LedgerEngine(seeded_state())
    store.save_static(engine.state)
    assert _purchase(store, engine, 100) is ResponseCode.APPROVED
    store.close()
    assert "txns_by_rrn" not in indexes(path) and "txns_by_ref" in indexes(path)
    with sqlite3.connect(path) as db:
        db.execute("CREATE INDEX txns_by_rrn ON txns (rrn)")  # as an older acqsim made it
    SqliteStore(path).close()
    assert "txns_by_rrn" not in indexes(path)
    reopened = SqliteStore(path)
    assert len(reopened.load().txns) == 1
    assert check_store(reopened) == []
    reopened.close()
