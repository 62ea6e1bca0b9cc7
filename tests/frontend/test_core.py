"""Every front-end check and message type, driven without a network (real HSM processor logic, real ledger
engine, real SQLite journal)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from frontend.effects import AskLedger, FailureKind, PeerFailure
from hsm_sim.client import PinVerification
from terminal.session import Original
from tests.frontend.harness import Harness
from wire.codec import decode_pos_body, encode_pos_body_with_mac
from wire.constants import ResponseCode as RC
from wire.header import PROCESSING_SIGN_ON_AGAIN
from wire.paycrypto import mac_cup_ecb
from wire.posframe import PosFrame


@pytest.fixture
def fe(tmp_path: Path) -> Harness:
    return Harness(tmp_path).signed_on()


def test_sign_on_gives_keys_whose_kcvs_check(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    outcome = harness.exchange("sign_on", harness.terminal.sign_on())
    assert outcome.approved and harness.terminal.state.signed_on
    assert harness.terminal.state.batch == "000001"


def test_financial_before_sign_on_asks_to_sign_on_again(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    harness.terminal.state.signed_on = True  # the terminal believes it is, with keys the host never issued
    harness.terminal.state.mak_under_tmk = "1A4D672DCA6CB33501E9D8DA9182FC1F"
    harness.terminal.state.pik_under_tmk = "1A4D672DCA6CB33501E9D8DA9182FC1F"
    card = harness.card()
    reply, _ = harness.send(harness.terminal.financial("purchase", card, amount=100, pin=card.pin))
    assert reply.header_request == PROCESSING_SIGN_ON_AGAIN and reply.note.endswith("77")


@pytest.mark.parametrize(
    ("kind", "amount", "pin", "card", "code"),
    [
        ("balance", 0, None, 0, RC.APPROVED),
        ("purchase", 1000, None, 0, RC.APPROVED),
        ("purchase", 1000, "000000", 0, RC.INCORRECT_PIN),
        ("purchase", 1000, None, 2, RC.EXPIRED_CARD),
        ("purchase", 1000, None, 3, RC.LOST_CARD),
        ("purchase", 1000, None, 5, RC.STOLEN_CARD),
        ("purchase", 5000, None, 4, RC.INSUFFICIENT_FUNDS),
        ("preauth", 1000, None, 0, RC.APPROVED),
    ],
)
def test_message_types_approved_and_declined(
    fe: Harness, kind: str, amount: int, pin: str | None, card: int, code: RC
) -> None:
    chosen = fe.card(card)
    outcome = fe.exchange(kind, fe.terminal.financial(kind, chosen, amount=amount, pin=pin or chosen.pin))
    assert outcome.response_code == code
    assert outcome.trusted  # every answer carries a MAC the terminal verifies


def test_third_wrong_pin_of_the_day_is_75(fe: Harness) -> None:
    card = fe.card()
    codes = [
        fe.exchange("purchase", fe.terminal.financial("purchase", card, amount=10, pin="000000")).response_code
        for _ in range(4)
    ]
    assert codes == ["55", "55", "75", "75"]
    right = fe.exchange("purchase", fe.terminal.financial("purchase", card, amount=10, pin=card.pin))
    assert right.response_code == "75"  # locked for the day


def test_hsm_pin_limit_is_75_even_for_the_right_pin(fe: Harness) -> None:
    card = fe.card()
    fe.pin_answer = PinVerification.TRIES_EXCEEDED  # the HSM's own per-account limit (DC error 29)
    right = fe.exchange("purchase", fe.terminal.financial("purchase", card, amount=10, pin=card.pin))
    assert right.response_code == "75"


def test_bad_mac_is_a0_and_asks_to_sign_on(fe: Harness) -> None:
    card = fe.card()
    payload = bytearray(fe.terminal.financial("purchase", card, amount=100, pin=card.pin))
    payload[-1] ^= 0x01
    reply, answer = fe.send(bytes(payload))
    assert decode_pos_body(PosFrame.parse(answer).body)["39"] == RC.MAC_FAILED
    assert reply.header_request == PROCESSING_SIGN_ON_AGAIN


def test_missing_field_is_30_unknown_type_12_unknown_terminal_58_wrong_merchant_03(fe: Harness) -> None:
    mak = fe.terminal._mak
    base = {
        "t": "0200",
        "3": "000000",
        "4": "000000000100",
        "11": "000777",
        "22": "022",
        "25": "00",
        "41": "10000001",
        "42": "898100000000001",
        "49": "156",
        "60": "22000001000",
        "2": fe.card().pan,
    }

    def send(fields: dict[str, str]) -> str:
        body = encode_pos_body_with_mac(fields, lambda block: mac_cup_ecb(mak, block))
        frame = PosFrame(tpdu=fe.terminal.tpdu, header=fe.terminal.header, body=body)
        _, answer = fe.send(frame.to_bytes())
        return decode_pos_body(PosFrame.parse(answer).body)["39"]

    assert send({k: v for k, v in base.items() if k != "49"}) == RC.FORMAT_ERROR
    assert send({**base, "60": "77000001000"}) == RC.INVALID_TRANSACTION
    assert send({**base, "t": "0600"}) == RC.FUNCTION_NOT_SUPPORTED
    assert send({**base, "41": "99999999"}) == RC.NOT_PERMITTED_TO_TERMINAL
    assert send({**base, "42": "898100000000002"}) == RC.INVALID_MERCHANT
    assert send(base) == RC.APPROVED
    assert send(base) == RC.DUPLICATE  # same terminal, batch, STAN and MTI


def test_void_refund_completion_need_their_original(fe: Harness) -> None:
    card = fe.card()
    missing = Original(stan="000999")
    for kind in ("void", "refund", "preauth_completion", "preauth_cancel"):
        outcome = fe.exchange(kind, fe.terminal.financial(kind, card, amount=100, pin=card.pin, original=missing))
        assert outcome.response_code == RC.ORIGINAL_NOT_FOUND, kind
    buy = fe.exchange("purchase", fe.terminal.financial("purchase", card, amount=300, pin=card.pin))
    void = fe.exchange(
        "void",
        fe.terminal.financial("void", card, amount=300, original=Original(stan=buy.fields["11"], rrn=buy.fields["37"])),
    )
    assert void.approved
    again = fe.exchange(
        "void", fe.terminal.financial("void", card, amount=300, original=Original(stan=buy.fields["11"]))
    )
    assert again.response_code == RC.ORIGINAL_NOT_FOUND  # a voided purchase cannot be voided twice


def test_ledger_timeout_answers_98_and_queues_a_reversal(fe: Harness) -> None:
    fe.overrides[AskLedger] = lambda effect: PeerFailure("ledger", FailureKind.TIMEOUT)
    card = fe.card()
    outcome = fe.exchange("purchase", fe.terminal.financial("purchase", card, amount=100, pin=card.pin))
    assert outcome.response_code == RC.CORE_TIMEOUT
    assert len(fe.reversals) == 1 and fe.reversals[0].original.stan == outcome.fields["11"]


def test_settlement_balanced_and_unbalanced(fe: Harness) -> None:
    card = fe.card()
    fe.exchange("purchase", fe.terminal.financial("purchase", card, amount=500, pin=card.pin))
    balanced = fe.exchange("settlement", fe.terminal.settlement())
    assert balanced.approved and balanced.fields["48"][30] == "1"
    fe.terminal.state.batch = "000002"
    fe.exchange("purchase", fe.terminal.financial("purchase", card, amount=700, pin=card.pin))
    fe.terminal.state.batch_txns.clear()  # the terminal lost its batch: totals disagree
    unbalanced = fe.exchange("settlement", fe.terminal.settlement())
    assert unbalanced.approved and unbalanced.fields["48"][30] == "2"
    for frame in fe.terminal.batch_uploads():
        assert fe.exchange("batch_upload", frame).approved
    fe.terminal.close_batch()
    after = fe.exchange("purchase", fe.terminal.financial("purchase", card, amount=100, pin=card.pin))
    assert after.approved  # both sides moved to batch 000003


def test_terminal_reversal_is_idempotent(fe: Harness) -> None:
    card = fe.card()
    buy = fe.terminal.financial("purchase", card, amount=900, pin=card.pin)
    fe.send(buy)  # the answer is "lost": the terminal keeps its reversal
    due = fe.terminal.reversal_due()
    assert due is not None
    first = fe.exchange("reversal", due)
    assert first.approved and fe.terminal.state.pending_reversal is None
    fe.terminal._store_reversal(decode_pos_body(PosFrame.parse(buy).body))
    due = fe.terminal.reversal_due()
    assert due is not None
    second = fe.exchange("reversal", due)
    assert second.approved
    account = fe.ledger.state.accounts[fe.ledger.state.cards[card.pan].account_id]
    assert account.balance == card.balance  # posted once, reversed once


def test_a_pin_without_a_pvv_on_track_2_is_a_format_error_and_costs_no_try(fe: Harness) -> None:
    card = fe.card()
    no_pvv = dataclasses.replace(card, service_code="2", pvki="", pvv="")  # track 2 too short to hold a PVV
    outcome = fe.exchange("purchase", fe.terminal.financial("purchase", no_pvv, amount=10, pin=card.pin))
    assert outcome.response_code == "30"
    right = fe.exchange("purchase", fe.terminal.financial("purchase", card, amount=10, pin=card.pin))
    assert right.response_code == "00"  # no PIN try was counted against the card
