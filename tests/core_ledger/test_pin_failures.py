"""Issue 17: a card's wrong PINs are counted at its ledger, the one store every front-end of a pool shares.

A wrong-PIN report (host link 0220 / 900000) counts one failure for the card's business day and answers the
terminal's code: 55, then 75 from the 3rd failure on; a retried report (same RRN) counts once. A request whose
field 22 says a PIN was entered is declined 75 once the failures that day reach 3; the next business day starts
again from none. The count is derived from the recorded reports, so it survives a restart on both backends.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core_ledger.api import MAX_PIN_FAILURES_PER_DAY, LedgerOp, LedgerRequest, op_for_route
from core_ledger.client import LedgerClient
from core_ledger.engine import LedgerEngine
from core_ledger.hostlink import request_fields, request_from_fields
from core_ledger.server import serve
from core_ledger.service import LedgerService
from core_ledger.sqlite_store import SqliteStore
from tests.core_ledger.conftest import StoreFactory
from tests.core_ledger.helpers import GOOD, LOST, NOW, OTHER, engine, request, seeded_state
from wire.codec import decode_host, encode_host
from wire.constants import Mti, ProcessingCode
from wire.constants import ResponseCode as RC

Op = LedgerOp
#: Field 22 of a swiped card with a PIN entered, and without one.
WITH_PIN, WITHOUT_PIN = "021", "022"


def run(eng: LedgerEngine, req: LedgerRequest) -> RC:
    decision = eng.decide(req)
    eng.commit(decision)
    return decision.answer.response_code


def with_pin(req: LedgerRequest, *, local_date: str = "1124") -> LedgerRequest:
    return dataclasses.replace(req, pos_entry_mode=WITH_PIN, local_date=local_date)


def wrong_pin(pan: str = GOOD, *, local_date: str = "1124", rrn: str | None = None) -> LedgerRequest:
    return with_pin(request(Op.PIN_FAILURE, pan, 100, rrn=rrn), local_date=local_date)


def test_third_failure_is_75_and_then_a_right_pin_is_75_but_a_purchase_without_pin_posts() -> None:
    eng = engine()
    codes = [run(eng, wrong_pin()) for _ in range(MAX_PIN_FAILURES_PER_DAY + 1)]
    assert codes == [RC.INCORRECT_PIN, RC.INCORRECT_PIN, RC.PIN_TRIES_EXCEEDED, RC.PIN_TRIES_EXCEEDED]
    start = eng.state.accounts[eng.state.cards[GOOD].account_id].balance
    assert run(eng, with_pin(request(Op.PURCHASE, GOOD, 100))) is RC.PIN_TRIES_EXCEEDED
    assert run(eng, with_pin(request(Op.BALANCE, GOOD))) is RC.PIN_TRIES_EXCEEDED
    assert eng.state.accounts[eng.state.cards[GOOD].account_id].balance == start  # nothing posted
    without = dataclasses.replace(request(Op.PURCHASE, GOOD, 100), pos_entry_mode=WITHOUT_PIN)
    assert run(eng, without) is RC.APPROVED  # the limit is on PIN tries, not on the card
    assert run(eng, with_pin(request(Op.PURCHASE, OTHER, 100))) is RC.APPROVED  # another card: its own count


def test_a_retried_report_counts_once_and_gets_its_first_answer() -> None:
    eng = engine()
    first = wrong_pin()
    assert run(eng, first) is RC.INCORRECT_PIN
    retried = eng.decide(first)
    assert retried.repeat and retried.answer.response_code is RC.INCORRECT_PIN and retried.effects == ()
    assert run(eng, wrong_pin()) is RC.INCORRECT_PIN  # the 2nd failure, not the 3rd
    assert run(eng, wrong_pin()) is RC.PIN_TRIES_EXCEEDED


def test_the_next_business_day_starts_from_no_failures() -> None:
    eng = engine()
    for _ in range(MAX_PIN_FAILURES_PER_DAY):
        run(eng, wrong_pin(local_date="1124"))
    assert run(eng, with_pin(request(Op.PURCHASE, GOOD, 100), local_date="1124")) is RC.PIN_TRIES_EXCEEDED
    assert run(eng, with_pin(request(Op.PURCHASE, GOOD, 100), local_date="1125")) is RC.APPROVED
    assert run(eng, wrong_pin(local_date="1125")) is RC.INCORRECT_PIN


def test_a_wrong_pin_counts_whatever_the_cards_state() -> None:
    """The terminal gets 55 for a wrong PIN on a lost card, as it did when the front-end counted alone."""
    eng = engine()
    assert run(eng, wrong_pin(LOST)) is RC.INCORRECT_PIN
    assert eng.state.pin_failures == {(LOST, "20261124"): 1}


def test_the_report_is_a_host_link_operation_only() -> None:
    fields = request_fields(wrong_pin())
    assert (fields["t"], fields["3"], fields["25"]) == (Mti.ADVICE, ProcessingCode.PIN_FAILURE, "00")
    assert op_for_route(Mti.ADVICE, ProcessingCode.PIN_FAILURE, "00") is None  # the switch link never names it


@given(
    pan=st.text("0123456789", min_size=13, max_size=19),
    rrn=st.text("0123456789", min_size=12, max_size=12),
    amount=st.integers(min_value=0, max_value=10**12 - 1),
    entry=st.sampled_from([WITH_PIN, "051", "071"]),
)
def test_a_report_round_trips_over_the_host_link(pan: str, rrn: str, amount: int, entry: str) -> None:
    report = dataclasses.replace(request(Op.PIN_FAILURE, pan, amount, rrn=rrn), pos_entry_mode=entry)
    decoded = request_from_fields(decode_host(encode_host(request_fields(report))))
    assert decoded == report and decoded.pin_entered


def test_failures_survive_a_restart_on_both_stores(store_factory: StoreFactory) -> None:
    """Derived from the recorded reports: a store written before the count existed opens as it is (none)."""
    opener = store_factory()
    store = opener()
    eng = engine()
    store.save_static(eng.state)
    store.commit([((t,), t.effects) for t in eng.state.txns.values()])
    store.close()
    store = opener()  # an existing store, reopened: nothing counted yet
    eng = LedgerEngine(store.load(), clock=lambda: NOW)
    assert eng.state.pin_failures == {}
    for _ in range(MAX_PIN_FAILURES_PER_DAY - 1):
        decision = eng.decide(wrong_pin())
        eng.commit(decision)
        store.commit([(decision.records, decision.effects)])
    store.close()

    reopened = opener()
    restarted = LedgerEngine(reopened.load(), clock=lambda: NOW)
    reopened.close()
    assert restarted.state.pin_failures == {(GOOD, "20261124"): MAX_PIN_FAILURES_PER_DAY - 1}
    assert run(restarted, wrong_pin()) is RC.PIN_TRIES_EXCEEDED


@pytest.mark.anyio
async def test_reports_over_tcp_count_once_per_rrn(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "ledger.sqlite3")
    state = seeded_state()
    store.save_static(state)
    store.commit([((t,), t.effects) for t in state.txns.values()])
    first = wrong_pin()
    async with anyio.create_task_group() as tg:
        service = LedgerService(store, LedgerEngine(store.load(), clock=lambda: NOW))
        port = await tg.start(functools.partial(serve, "127.0.0.1", 0, service=service))
        async with await LedgerClient.connect("127.0.0.1", port) as client:
            codes = [(await client.submit(first)).response_code for _ in range(3)]  # one report, retried
            codes.append((await client.submit(wrong_pin())).response_code)
            codes.append((await client.submit(wrong_pin())).response_code)
            right = await client.submit(with_pin(request(Op.PURCHASE, GOOD, 100)))
        tg.cancel_scope.cancel()
    store.close()
    assert codes == [RC.INCORRECT_PIN] * 4 + [RC.PIN_TRIES_EXCEEDED]
    assert right.response_code is RC.PIN_TRIES_EXCEEDED
