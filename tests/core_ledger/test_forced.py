"""Forced postings (a scheme's stand-in advice, docs/ledger.md): posted whatever the ledger's checks say, once."""

from __future__ import annotations

import dataclasses

import pytest

from core_ledger.api import LedgerOp, LedgerRequest
from core_ledger.engine import FORCED_KEY_PREFIX, LedgerEngine
from core_ledger.hostlink import request_fields, request_from_fields
from core_ledger.model import TxnStatus
from tests.core_ledger.helpers import EXPIRED, GOOD, LIMITED, LOST, LOW, engine, key_of, request
from wire.constants import Mti
from wire.constants import ResponseCode as RC


def forced(req: LedgerRequest) -> LedgerRequest:
    return dataclasses.replace(req, forced=True, auth_code="S00042")


def balance_of(eng: LedgerEngine, pan: str) -> int:
    return eng.state.accounts[eng.state.cards[pan].account_id].balance


def run(eng: LedgerEngine, req: LedgerRequest) -> RC:
    decision = eng.decide(req)
    eng.commit(decision)
    return decision.answer.response_code


@pytest.mark.parametrize(
    ("pan", "declined_as"),
    [
        (LOW, RC.INSUFFICIENT_FUNDS),
        (LOST, RC.LOST_CARD),
        (EXPIRED, RC.EXPIRED_CARD),
        (LIMITED, RC.EXCEEDS_AMOUNT_LIMIT),
    ],
)
def test_a_forced_purchase_posts_what_the_ledger_would_decline_exactly_once(pan: str, declined_as: RC) -> None:
    eng = engine()
    amount = 6_000
    assert eng.decide(request(LedgerOp.PURCHASE, pan, amount)).answer.response_code is declined_as
    before = balance_of(eng, pan)
    advice = forced(request(LedgerOp.PURCHASE, pan, amount))
    first = eng.decide(advice)
    eng.commit(first)
    assert first.answer.response_code is RC.APPROVED and first.answer.auth_code == "S00042"
    assert balance_of(eng, pan) == before - amount
    txn = eng.state.txns[key_of(advice)]
    assert txn.forced and txn.status is TxnStatus.POSTED
    again = eng.decide(advice)  # the switch sent it again: its first answer, nothing more posted
    eng.commit(again)
    assert again.repeat and again.answer == first.answer
    assert balance_of(eng, pan) == before - amount


def test_an_advice_for_an_original_the_ledger_approved_is_a_repeat() -> None:
    eng = engine()
    original = request(LedgerOp.PURCHASE, GOOD, 1_000)
    assert run(eng, original) is RC.APPROVED
    before = balance_of(eng, GOOD)
    decision = eng.decide(forced(original))
    assert decision.repeat and decision.answer.response_code is RC.APPROVED
    assert balance_of(eng, GOOD) == before and not eng.state.txns[key_of(original)].forced


def test_an_advice_over_a_declined_original_posts_beside_it_and_a_reversal_undoes_it() -> None:
    eng = engine()
    original = request(LedgerOp.PURCHASE, LOW, 5_000)
    assert run(eng, original) is RC.INSUFFICIENT_FUNDS  # declined; the answer was lost, the switch stood in
    before = balance_of(eng, LOW)
    assert run(eng, forced(original)) is RC.APPROVED
    assert balance_of(eng, LOW) == before - 5_000 < 0
    assert eng.state.txns[key_of(original)].status is TxnStatus.DECLINED  # kept as it was
    assert eng.state.txns[FORCED_KEY_PREFIX + key_of(original)].forced
    assert eng.decide(forced(original)).repeat
    reversal = request(LedgerOp.REVERSAL, LOW, 5_000, original=original, rrn=original.rrn)
    assert run(eng, reversal) is RC.APPROVED
    assert balance_of(eng, LOW) == before
    assert eng.state.txns[FORCED_KEY_PREFIX + key_of(original)].status is TxnStatus.REVERSED


def test_a_forced_preauth_holds_beyond_the_balance() -> None:
    eng = engine()
    advice = forced(request(LedgerOp.PREAUTH, LOW, 9_000))
    assert run(eng, advice) is RC.APPROVED
    account = eng.state.accounts[eng.state.cards[LOW].account_id]
    assert account.held == 9_000 and account.available < 0


@pytest.mark.parametrize(
    ("pan", "amount", "code"), [("6299999999999999", 100, RC.INVALID_CARD), (GOOD, 0, RC.INVALID_AMOUNT)]
)
def test_a_forced_posting_needs_a_known_card_and_a_positive_amount(pan: str, amount: int, code: RC) -> None:
    eng = engine()
    decision = eng.decide(forced(request(LedgerOp.PURCHASE, pan, amount)))
    assert decision.answer.response_code is code and not decision.records


def test_a_changed_advice_under_a_posted_key_is_refused() -> None:
    eng = engine()
    advice = forced(request(LedgerOp.PURCHASE, LOW, 5_000))
    assert run(eng, advice) is RC.APPROVED
    assert eng.decide(dataclasses.replace(advice, amount=5_001)).answer.response_code is RC.DUPLICATE


@pytest.mark.parametrize("op", [LedgerOp.PURCHASE, LedgerOp.PREAUTH, LedgerOp.PREAUTH_COMPLETION])
def test_the_host_link_carries_a_forced_posting_as_0120(op: LedgerOp) -> None:
    advice = forced(request(op, GOOD, 700))
    fields = request_fields(advice)
    assert fields["t"] == Mti.STAND_IN_ADVICE
    back = request_from_fields(fields)
    assert (back.op, back.forced, back.key, back.amount, back.auth_code) == (op, True, advice.key, 700, "S00042")
    assert request_fields(dataclasses.replace(advice, forced=False))["t"] != Mti.STAND_IN_ADVICE


def test_only_what_a_stand_in_approves_can_be_forced() -> None:
    with pytest.raises(ValueError, match="cannot be posted forced"):
        request_fields(forced(request(LedgerOp.REFUND, GOOD, 700)))
