"""The ledger's decisions, operation by operation, without I/O."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from core_ledger.api import LedgerOp
from core_ledger.engine import LedgerEngine
from core_ledger.model import TxnStatus
from tests.core_ledger.helpers import (
    EXPIRED,
    GOOD,
    LIMITED,
    LOST,
    LOW,
    OTHER,
    STOLEN,
    engine,
    key_of,
    request,
)
from wire.constants import ResponseCode as RC
from wire.localdate import business_date

Op = LedgerOp


def run(eng: LedgerEngine, req: object) -> RC:
    decision = eng.decide(req)  # type: ignore[arg-type]
    eng.commit(decision)
    return decision.answer.response_code


def balance_of(eng: LedgerEngine, pan: str) -> tuple[int, int]:
    account = eng.state.accounts[eng.state.cards[pan].account_id]
    return account.balance, account.available


@pytest.mark.parametrize(
    ("pan", "amount", "code"),
    [
        (GOOD, 1000, RC.APPROVED),
        ("6200009999999999", 1000, RC.INVALID_CARD),
        (LOST, 100, RC.LOST_CARD),
        (STOLEN, 100, RC.STOLEN_CARD),
        (EXPIRED, 100, RC.EXPIRED_CARD),
        (LOW, 5000, RC.INSUFFICIENT_FUNDS),
        (GOOD, 0, RC.INVALID_AMOUNT),
        (LIMITED, 6000, RC.EXCEEDS_AMOUNT_LIMIT),
    ],
)
def test_purchase_decisions(pan: str, amount: int, code: RC) -> None:
    assert run(engine(), request(Op.PURCHASE, pan, amount)) is code


def test_purchase_posts_double_entry_and_repeat_returns_first_answer() -> None:
    eng = engine()
    req = request(Op.PURCHASE, GOOD, 2500)
    first = eng.decide(req)
    eng.commit(first)
    assert balance_of(eng, GOOD) == (97_500, 97_500)
    again = eng.decide(req)
    assert again.repeat and again.answer == first.answer and not again.effects
    changed = request(Op.PURCHASE, GOOD, 9999, stan=req.stan, rrn=req.rrn)
    assert eng.decide(changed).answer.response_code is RC.DUPLICATE
    assert sum(a.balance for a in eng.state.accounts.values()) == 0


def test_preauth_hold_completion_within_tolerance_and_void_restores_hold() -> None:
    eng = engine()
    pre = request(Op.PREAUTH, GOOD, 10_000)
    decision = eng.decide(pre)
    eng.commit(decision)
    assert balance_of(eng, GOOD) == (100_000, 90_000)
    too_much = request(Op.PREAUTH_COMPLETION, GOOD, 11_600, original=pre, auth_code=decision.answer.auth_code)
    assert run(eng, too_much) is RC.INVALID_AMOUNT
    done = request(Op.PREAUTH_COMPLETION, GOOD, 11_000, original=pre, auth_code=decision.answer.auth_code)
    assert run(eng, done) is RC.APPROVED
    assert balance_of(eng, GOOD) == (89_000, 89_000)
    assert run(eng, request(Op.PREAUTH_COMPLETION_VOID, GOOD, 11_000, original=done)) is RC.APPROVED
    assert balance_of(eng, GOOD) == (100_000, 90_000)  # the hold comes back
    assert run(eng, request(Op.PREAUTH_CANCEL, GOOD, 0, original=pre)) is RC.APPROVED
    assert balance_of(eng, GOOD) == (100_000, 100_000)


def test_void_refund_rules() -> None:
    eng = engine()
    buy = request(Op.PURCHASE, GOOD, 3000)
    run(eng, buy)
    assert run(eng, request(Op.REFUND, GOOD, 2000, original=buy)) is RC.APPROVED
    assert run(eng, request(Op.REFUND, GOOD, 1001, original=buy)) is RC.INVALID_AMOUNT
    assert run(eng, request(Op.VOID, GOOD, 3000, original=buy)) is RC.INVALID_TRANSACTION  # partly refunded
    assert run(eng, request(Op.REFUND, OTHER, 100, original=buy)) is RC.ORIGINAL_MISMATCH
    missing = request(Op.PURCHASE, GOOD, 1)
    assert run(eng, request(Op.VOID, GOOD, 1, original=missing)) is RC.ORIGINAL_NOT_FOUND
    buy2 = request(Op.PURCHASE, GOOD, 500)
    run(eng, buy2)
    assert run(eng, request(Op.VOID, GOOD, 500, original=buy2)) is RC.APPROVED
    assert eng.state.txns[key_of(buy2)].status is TxnStatus.VOIDED
    assert balance_of(eng, GOOD) == (100_000 - 3000 + 2000, 100_000 - 1000)


def test_transfer_and_reversal_undo_everything() -> None:
    eng = engine()
    move = request(Op.TRANSFER, GOOD, 7000, target_pan=OTHER)
    assert run(eng, move) is RC.APPROVED
    assert balance_of(eng, OTHER)[0] == 57_000
    assert run(eng, request(Op.REVERSAL, GOOD, 7000, original=move)) is RC.APPROVED
    assert balance_of(eng, GOOD)[0] == 100_000 and balance_of(eng, OTHER)[0] == 50_000
    # reversing again is harmless
    assert run(eng, request(Op.REVERSAL, GOOD, 7000, original=move)) is RC.APPROVED
    assert balance_of(eng, GOOD)[0] == 100_000


def test_reversal_before_original_leaves_a_tombstone() -> None:
    eng = engine()
    late = request(Op.PURCHASE, GOOD, 1200)
    assert run(eng, request(Op.REVERSAL, GOOD, 1200, original=late)) is RC.APPROVED
    assert run(eng, late) is RC.INVALID_TRANSACTION
    assert balance_of(eng, GOOD) == (100_000, 100_000)


def test_daily_limit_counts_today_and_reversal_gives_it_back() -> None:
    eng = engine()
    first = request(Op.PURCHASE, LIMITED, 4000)
    assert run(eng, first) is RC.APPROVED
    assert run(eng, request(Op.PURCHASE, LIMITED, 2000)) is RC.EXCEEDS_AMOUNT_LIMIT
    run(eng, request(Op.REVERSAL, LIMITED, 4000, original=first))
    assert run(eng, request(Op.PURCHASE, LIMITED, 2000)) is RC.APPROVED


def test_balance_inquiry_reports_available() -> None:
    eng = engine()
    run(eng, request(Op.PREAUTH, GOOD, 1000))
    decision = eng.decide(request(Op.BALANCE, GOOD))
    assert decision.answer.balance == 100_000 and decision.answer.available == 99_000


def test_reversal_may_carry_its_originals_stan() -> None:
    eng = engine()
    buy = request(Op.PURCHASE, GOOD, 900)
    assert run(eng, buy) is RC.APPROVED
    same_stan = request(Op.REVERSAL, GOOD, 900, stan=buy.stan, original=buy)  # POS style: 11 names the original
    assert run(eng, same_stan) is RC.APPROVED
    assert run(eng, same_stan) is RC.APPROVED  # a repeat of the reversal
    assert balance_of(eng, GOOD) == (100_000, 100_000)
    assert run(eng, buy) is RC.APPROVED  # the original's repeat still gets its first answer, posts nothing
    assert balance_of(eng, GOOD) == (100_000, 100_000)


def test_reversal_of_a_refunded_or_voided_original_is_refused() -> None:
    eng = engine()
    buy = request(Op.PURCHASE, GOOD, 3000)
    run(eng, buy)
    refund = request(Op.REFUND, GOOD, 1000, original=buy)
    run(eng, refund)
    assert run(eng, request(Op.REVERSAL, GOOD, 3000, original=buy)) is RC.INVALID_TRANSACTION
    assert run(eng, request(Op.REVERSAL, GOOD, 1000, original=refund)) is RC.APPROVED  # undo the refund first
    assert run(eng, request(Op.REVERSAL, GOOD, 3000, original=buy)) is RC.APPROVED
    assert balance_of(eng, GOOD) == (100_000, 100_000)
    assert sum(a.balance for a in eng.state.accounts.values()) == 0


def test_late_original_after_tombstone_is_declined_even_as_preauth() -> None:
    eng = engine()
    late = request(Op.PREAUTH, GOOD, 5000)
    assert run(eng, request(Op.REVERSAL, GOOD, 5000, original=late)) is RC.APPROVED
    assert run(eng, late) is RC.INVALID_TRANSACTION
    assert balance_of(eng, GOOD) == (100_000, 100_000)
    assert not eng.state.holds


@pytest.mark.parametrize(
    ("local_date", "now", "expected"),
    [
        ("1231", dt.datetime(2027, 1, 1, 0, 5, tzinfo=dt.UTC), "20261231"),
        ("0101", dt.datetime(2026, 12, 31, 23, 55, tzinfo=dt.UTC), "20270101"),
        ("1124", dt.datetime(2026, 11, 24, tzinfo=dt.UTC), "20261124"),
        ("0229", dt.datetime(2028, 2, 28, tzinfo=dt.UTC), "20280229"),
    ],
)
def test_business_date_takes_the_nearest_year(local_date: str, now: dt.datetime, expected: str) -> None:
    assert business_date(local_date, now) == expected


def test_bad_date_is_a_format_error_and_wrong_auth_code_a_mismatch() -> None:
    eng = engine()
    bad = dataclasses.replace(request(Op.PURCHASE, GOOD, 100), local_date="1340")
    assert run(eng, bad) is RC.FORMAT_ERROR
    pre = request(Op.PREAUTH, GOOD, 1000)
    run(eng, pre)
    assert run(eng, request(Op.PREAUTH_CANCEL, GOOD, 0, original=pre, auth_code="999999")) is RC.ORIGINAL_MISMATCH
    assert run(eng, request(Op.PREAUTH_COMPLETION, OTHER, 1000, original=pre)) is RC.ORIGINAL_MISMATCH
    assert balance_of(eng, GOOD) == (100_000, 99_000)


def test_declined_request_repeats_its_decline_and_never_posts_later() -> None:
    eng = engine()
    big = request(Op.PURCHASE, LOW, 5000)
    assert run(eng, big) is RC.INSUFFICIENT_FUNDS
    run(eng, request(Op.TRANSFER, GOOD, 10_000, target_pan=LOW))  # now LOW could pay
    assert run(eng, big) is RC.INSUFFICIENT_FUNDS  # the key's first answer stands
    assert balance_of(eng, LOW) == (11_000, 11_000)


def test_original_found_although_field_90_drops_the_acquirers_leading_zeros() -> None:
    eng = engine()
    buy = dataclasses.replace(request(Op.PURCHASE, GOOD, 250), acquirer_id="00048009")
    assert run(eng, buy) is RC.APPROVED
    wire_ref = dataclasses.replace(request(Op.VOID, GOOD, 250, original=buy), acquirer_id="00048009")
    assert wire_ref.original is not None
    stripped = dataclasses.replace(wire_ref, original=dataclasses.replace(wire_ref.original, acquirer_id="48009"))
    assert run(eng, stripped) is RC.APPROVED
    assert balance_of(eng, GOOD) == (100_000, 100_000)


def test_expiry_in_the_request_must_be_the_cards() -> None:
    eng = engine()
    assert run(eng, dataclasses.replace(request(Op.PURCHASE, GOOD, 100), expiry="2912")) is RC.EXPIRED_CARD
    assert run(eng, dataclasses.replace(request(Op.PURCHASE, GOOD, 100), expiry="3012")) is RC.APPROVED
    assert balance_of(eng, GOOD) == (99_900, 99_900)
