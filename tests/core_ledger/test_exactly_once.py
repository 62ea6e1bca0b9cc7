"""Issue #14.3: the ledger's key is the transaction itself (acquirer 32, RRN 37), not (32, 41, 11, 13).

A terminal that is reset (or a second ``acqsim load`` run the same day) reuses STANs 000001.. in a new batch;
the front-end gives each transaction a new RRN, so each one posts. A true retransmission (same RRN, same
content) gets the first answer and posts nothing; the same RRN with other content is refused 94, loudly.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
from pathlib import Path

import anyio
import pytest

from core_ledger.api import LedgerAnswer, LedgerOp, LedgerRequest
from core_ledger.check import check_store
from core_ledger.client import LedgerClient
from core_ledger.engine import LedgerEngine
from core_ledger.hostlink import ORIGINAL_RRN_FIELD, match_key, request_fields, request_from_fields
from core_ledger.model import TxnStatus
from core_ledger.server import serve
from core_ledger.service import LedgerService
from core_ledger.sqlite_store import SqliteStore
from core_ledger.store import StoreError
from tests.core_ledger.conftest import StoreFactory
from tests.core_ledger.helpers import GOOD, NOW, OTHER, engine, key_of, request, seeded_state
from wire.constants import ResponseCode as RC

Op = LedgerOp
RUN_SIZE = 50


def run(eng: LedgerEngine, req: object) -> RC:
    decision = eng.decide(req)  # type: ignore[arg-type]
    eng.commit(decision)
    return decision.answer.response_code


def balance(eng: LedgerEngine, pan: str) -> int:
    return eng.state.accounts[eng.state.cards[pan].account_id].balance


def test_two_runs_reusing_stans_all_post_then_repeat_and_conflict(caplog: pytest.LogCaptureFixture) -> None:
    eng = engine()
    start = balance(eng, GOOD)
    runs = [[request(Op.PURCHASE, GOOD, 100, stan=f"{i:06d}") for i in range(1, RUN_SIZE + 1)] for _ in range(2)]
    for batch in runs:
        assert [run(eng, r) for r in batch] == [RC.APPROVED] * RUN_SIZE
    assert balance(eng, GOOD) == start - 2 * RUN_SIZE * 100  # every approval debited: none taken for a repeat

    first = runs[1][0]
    answer = eng.decide(first).answer
    repeat = eng.decide(first)  # a retransmission: same RRN, same content
    assert repeat.repeat and not repeat.effects and repeat.answer == answer
    eng.commit(repeat)
    assert balance(eng, GOOD) == start - 2 * RUN_SIZE * 100

    changed = request(Op.PURCHASE, GOOD, 999, stan=first.stan, rrn=first.rrn)  # same key, other amount
    with caplog.at_level(logging.WARNING, logger="acqsim.ledger"):
        conflict = eng.decide(changed)
    assert conflict.answer.response_code is RC.DUPLICATE
    assert not conflict.records and not conflict.effects
    assert eng.conflicts == 1
    [line] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert first.rrn in line and "amount" in line
    assert GOOD not in line and GOOD[-4:] in line  # the PAN masked
    eng.commit(conflict)
    assert balance(eng, GOOD) == start - 2 * RUN_SIZE * 100


def test_a_conflict_names_every_part_that_differs(caplog: pytest.LogCaptureFixture) -> None:
    eng = engine()
    buy = request(Op.PURCHASE, GOOD, 100)
    run(eng, buy)
    other = request(Op.REFUND, OTHER, 100, rrn=buy.rrn, original=buy)
    with caplog.at_level(logging.WARNING, logger="acqsim.ledger"):
        assert run(eng, other) is RC.DUPLICATE
    assert eng.conflicts == 1
    [line] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "differs in op, pan, original;" in line  # amount, terminal and target are the same
    assert OTHER not in line


@pytest.mark.parametrize("by_rrn", [True, False], ids=["by-rrn-56", "by-field-90"])
def test_void_finds_the_original_of_the_right_batch(by_rrn: bool) -> None:
    """Two purchases with the same STAN, date and time (a reset terminal): the void names the second."""
    eng = engine()
    start = balance(eng, GOOD)
    older = request(Op.PURCHASE, GOOD, 300, stan="000007")
    newer = request(Op.PURCHASE, GOOD, 500, stan="000007")
    assert run(eng, older) is RC.APPROVED
    assert run(eng, newer) is RC.APPROVED
    assert run(eng, request(Op.VOID, GOOD, 500, original=newer, by_rrn=by_rrn)) is RC.APPROVED
    assert eng.state.txns[key_of(newer)].status is TxnStatus.VOIDED
    assert eng.state.txns[key_of(older)].status is TxnStatus.POSTED
    assert balance(eng, GOOD) == start - 300


def test_by_rrn_the_older_batch_can_still_be_named() -> None:
    eng = engine()
    older = request(Op.PURCHASE, GOOD, 300, stan="000007")
    newer = request(Op.PURCHASE, GOOD, 500, stan="000007")
    run(eng, older)
    run(eng, newer)
    assert run(eng, request(Op.REFUND, GOOD, 300, original=older)) is RC.APPROVED
    assert eng.state.txns[key_of(older)].refunded == 300
    assert eng.state.txns[key_of(newer)].refunded == 0


def test_a_reversal_has_its_own_key_and_repeats_safely() -> None:
    eng = engine()
    start = balance(eng, GOOD)
    buy = request(Op.PURCHASE, GOOD, 800)
    run(eng, buy)
    reversal = request(Op.REVERSAL, GOOD, 800, stan=buy.stan, original=buy)  # POS style: 11 is the original's
    assert run(eng, reversal) is RC.APPROVED
    assert run(eng, reversal) is RC.APPROVED  # repeated: the first answer, nothing more
    assert balance(eng, GOOD) == start
    assert eng.state.txns[key_of(buy)].status is TxnStatus.REVERSED
    assert eng.state.txns["REV|" + key_of(reversal)].original == key_of(buy)


def test_a_reversal_carrying_its_originals_rrn_reverses_that_one() -> None:
    """ISO 8583 practice (and the front-end's timeout reversal): the 0400 echoes the original's 37; with no
    field 56 it still finds the original of the right batch, and never collides with it."""
    eng = engine()
    start = balance(eng, GOOD)
    older = request(Op.PURCHASE, GOOD, 300, stan="000009")
    newer = request(Op.PURCHASE, GOOD, 500, stan="000009")
    run(eng, older)
    run(eng, newer)
    reversal = request(Op.REVERSAL, GOOD, 300, stan=older.stan, rrn=older.rrn, original=older, by_rrn=False)
    assert run(eng, reversal) is RC.APPROVED
    assert eng.state.txns[key_of(older)].status is TxnStatus.REVERSED
    assert eng.state.txns[key_of(newer)].status is TxnStatus.POSTED
    assert balance(eng, GOOD) == start - 500


@pytest.mark.parametrize("by_rrn", [True, False], ids=["by-rrn-56", "by-field-90"])
def test_reversal_before_its_original_leaves_a_tombstone(by_rrn: bool) -> None:
    eng = engine()
    start = balance(eng, GOOD)
    late = request(Op.PURCHASE, GOOD, 600)
    assert run(eng, request(Op.REVERSAL, GOOD, 600, original=late, by_rrn=by_rrn)) is RC.APPROVED
    assert run(eng, late) is RC.INVALID_TRANSACTION  # it arrives after its reversal: never posts
    assert balance(eng, GOOD) == start
    same_stan_new_rrn = request(Op.PURCHASE, GOOD, 600, stan=late.stan)
    if by_rrn:  # another transaction of the same STAN is not the one reversed
        assert run(eng, same_stan_new_rrn) is RC.APPROVED


def test_a_request_without_an_rrn_is_a_format_error() -> None:
    eng = engine()
    assert run(eng, request(Op.PURCHASE, GOOD, 100, rrn=" " * 12)) is RC.FORMAT_ERROR


def test_host_link_carries_the_original_rrn_in_field_56_and_matches_by_32_37() -> None:
    buy = request(Op.PURCHASE, GOOD, 100)
    void = request(Op.VOID, GOOD, 100, original=buy)
    fields = request_fields(void)
    assert fields[ORIGINAL_RRN_FIELD] == buy.rrn
    assert "90" in fields  # kept for information and for older ledgers
    assert request_from_fields(fields) == void
    assert match_key(fields) == ("02", void.acquirer_id, void.rrn)
    older_client = request(Op.VOID, GOOD, 100, original=buy, by_rrn=False)
    assert ORIGINAL_RRN_FIELD not in request_fields(older_client)
    assert request_from_fields(request_fields(older_client)) == older_client


def test_a_store_of_the_old_key_schema_is_refused_with_one_clear_line(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:  # the txns table as the (32, 41, 11, 13) version wrote it
        db.execute(
            "CREATE TABLE txns (seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE, op TEXT NOT NULL, "
            "pan TEXT NOT NULL, amount INTEGER NOT NULL, terminal_id TEXT NOT NULL, merchant_id TEXT NOT NULL, "
            "business_date TEXT NOT NULL, rrn TEXT NOT NULL, fingerprint TEXT NOT NULL, answer TEXT NOT NULL, "
            "status TEXT NOT NULL, original TEXT, auth_code TEXT, refunded INTEGER NOT NULL, "
            "effects TEXT NOT NULL, settled INTEGER NOT NULL)"
        )
    db.close()
    with pytest.raises(StoreError) as caught:
        SqliteStore(path)
    message = str(caught.value)
    assert str(path) in message and "old idempotency key" in message and "new --db" in message
    assert "\n" not in message


def test_stores_round_trip_the_reference_and_find_originals_after_restart(store_factory: StoreFactory) -> None:
    opener = store_factory()
    store = opener()
    eng = engine()
    store.save_static(eng.state)
    store.commit([((t,), t.effects) for t in eng.state.txns.values()])
    buy = request(Op.PURCHASE, GOOD, 250)
    decision = eng.decide(buy)
    eng.commit(decision)
    store.commit([(decision.records, decision.effects)])
    store.close()

    reopened = opener()
    restarted = LedgerEngine(reopened.load(), clock=eng.clock)
    assert restarted.decide(buy).repeat  # a retransmission after the restart: the first answer
    assert run(restarted, request(Op.VOID, GOOD, 250, original=buy, by_rrn=False)) is RC.APPROVED  # field 90
    reopened.close()


def test_every_store_session_states_its_durability(store_factory: StoreFactory) -> None:
    """A commit is on disk before the ledger answers: PostgreSQL sessions set synchronous_commit = on whatever
    the server's default; SQLite runs WAL with synchronous = FULL (2)."""
    import psycopg

    from core_ledger.postgres_store import PostgresStore

    opener = store_factory()
    store = opener()
    try:
        if isinstance(store, PostgresStore):
            store.close()
            with psycopg.connect(store.url, autocommit=True) as admin:  # a server whose default is off
                admin.execute("ALTER DATABASE " + store.url.rsplit("/", 1)[1] + " SET synchronous_commit = off")
            with psycopg.connect(store.url) as plain:
                assert plain.execute("SHOW synchronous_commit").fetchone() == ("off",)
            store = opener()
            assert store.setting("synchronous_commit") == "on"
        else:
            assert (store.setting("journal_mode"), store.setting("synchronous")) == ("wal", "2")
            with pytest.raises(ValueError, match="not a ledger durability setting"):
                store.setting("cache_size; DROP TABLE txns")
    finally:
        store.close()


@pytest.mark.anyio
async def test_two_runs_reusing_stans_over_tcp_on_one_link_then_repeat_and_conflict_after_restart(
    store_factory: StoreFactory,
) -> None:
    """The reported scenario end to end: both runs' purchases (STANs 000001.. twice, new RRNs) in flight at once
    on ONE connection, so the client must match answers by (MTI class, 32, 37); every one approved and debited.
    After a ledger restart a retransmission gets the first answer and the same RRN with another amount gets 94;
    neither posts."""
    opener = store_factory()
    store = opener()
    state = seeded_state()
    store.save_static(state)
    store.commit([((t,), t.effects) for t in state.txns.values()])
    start = state.accounts[state.cards[GOOD].account_id].balance
    runs = [[request(Op.PURCHASE, GOOD, 100, stan=f"{i:06d}") for i in range(1, RUN_SIZE + 1)] for _ in range(2)]
    answers: dict[str, LedgerAnswer] = {}

    async with anyio.create_task_group() as tg:
        service = LedgerService(store, LedgerEngine(store.load(), clock=lambda: NOW))
        port = await tg.start(functools.partial(serve, "127.0.0.1", 0, service=service))
        async with await LedgerClient.connect("127.0.0.1", port) as client:

            async def submit(req: LedgerRequest) -> None:
                answers[req.rrn] = await client.submit(req)

            async with anyio.create_task_group() as senders:
                for req in runs[0] + runs[1]:
                    senders.start_soon(submit, req)
        tg.cancel_scope.cancel()
    store.close()
    assert {a.response_code for a in answers.values()} == {RC.APPROVED}
    assert len(answers) == 2 * RUN_SIZE
    assert len({a.auth_code for a in answers.values()}) == 2 * RUN_SIZE  # each answer is its own request's

    store = opener()  # restart
    assert check_store(store) == []
    async with anyio.create_task_group() as tg:
        service = LedgerService(store, LedgerEngine(store.load(), clock=lambda: NOW))
        port = await tg.start(functools.partial(serve, "127.0.0.1", 0, service=service))
        async with await LedgerClient.connect("127.0.0.1", port) as client:
            first = runs[1][0]
            assert await client.submit(first) == answers[first.rrn]  # a retransmission: the first answer
            changed = request(Op.PURCHASE, GOOD, 999, stan=first.stan, rrn=first.rrn)
            assert (await client.submit(changed)).response_code is RC.DUPLICATE
            balance = await client.submit(request(Op.BALANCE, GOOD))
        tg.cancel_scope.cancel()
    assert balance.balance == start - 2 * RUN_SIZE * 100  # every approval debited once, nothing more
    assert service.engine.conflicts == 1
    store.close()
