"""The switch's rules without a network: routing, stand-in policy, relaying, the reversal owed to an issuer."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from core_ledger.api import LedgerOp
from hsm_sim.client import KeyType
from hsm_sim.keys import DEFAULT_TEST_LMK, encrypt_under_lmk
from scheme.bins import BinRange, BinTable
from scheme.client import OriginalData, SwitchRequest
from scheme.core import Forward, LegRecord, NotInMessageSet, Reply, StandInPolicy, SwitchCore
from scheme.members import Member
from wire.clearingfile import CardType
from wire.constants import Mti, ResponseCode
from wire.switchlink import SwitchHeader, SwitchMessage

KEY = encrypt_under_lmk(DEFAULT_TEST_LMK, KeyType.ZAK, bytes.fromhex("0123456789ABCDEFFEDCBA9876543210"))
PIN_KEY = encrypt_under_lmk(DEFAULT_TEST_LMK, KeyType.ZPK, bytes.fromhex("0123456789ABCDEFFEDCBA9876543210"))
ACQ, ISS, ACQ_ONLY_BIN_OWNER = "48009999", "63050000", "70000000"
MEMBERS = {
    ACQ: Member(institution_id=ACQ, name="A", zak=KEY, zpk=PIN_KEY),
    ISS: Member(institution_id=ISS, name="B", zak=KEY, zpk=PIN_KEY, issuer_host="127.0.0.1", issuer_port=1),
    ACQ_ONLY_BIN_OWNER: Member(institution_id=ACQ_ONLY_BIN_OWNER, name="C", zak=KEY, zpk=PIN_KEY),
}
BINS = BinTable(
    [
        BinRange(prefix="623050", issuer_id=ISS, card_type=CardType.DEBIT),
        BinRange(prefix="62305099", issuer_id=ISS, card_type=CardType.CREDIT),
        BinRange(prefix="700000", issuer_id=ACQ_ONLY_BIN_OWNER, card_type=CardType.DEBIT),
    ]
)
NOW = dt.datetime(2026, 12, 4, 9, 30, tzinfo=dt.UTC)


def core(limit: int | None = 10_000) -> SwitchCore:
    return SwitchCore(
        switch_id="00010000", members=MEMBERS, bins=BINS, stand_in=StandInPolicy(approve_limit=limit), clock=lambda: NOW
    )


def message(
    op: LedgerOp = LedgerOp.PURCHASE,
    pan: str = "6230501000000014",
    amount: int = 5_000,
    changes: dict[str, str] | None = None,
) -> SwitchMessage:
    fields = SwitchRequest(
        op=op,
        acquirer_id=ACQ,
        pan=pan,
        amount=amount,
        stan="000007",
        rrn="120400000700",
        terminal_id="10000001",
        merchant_id="898100000000001",
        local_time="093000",
        local_date="1204",
        transmission="1204093000",
        pin_block=bytes(8),
        original=OriginalData(mti="0200", stan="000006", local_date="1204", local_time="092900")
        if op is not LedgerOp.PURCHASE
        else None,
    ).fields()
    fields.update(changes or {})
    fields = {k: v for k, v in fields.items() if v}
    header = SwitchHeader(destination_id="00010000", source_id=ACQ)
    return SwitchMessage(header=header, fields=fields, mac_block=b"", mac=None)


def test_bin_table_takes_the_longest_prefix() -> None:
    assert BINS.route("6230509912345678") == BinRange(prefix="62305099", issuer_id=ISS, card_type=CardType.CREDIT)
    assert BINS.route("6230501000000014").card_type is CardType.DEBIT  # type: ignore[union-attr]
    assert BINS.route("4111111111111111") is None
    assert BINS.route("623050") is None  # a PAN is longer than its BIN
    with pytest.raises(ValueError, match="twice"):
        BinTable([BINS.ranges()[0], BINS.ranges()[0]])


@pytest.mark.parametrize(
    ("changes", "pan", "code"),
    [
        ({"41": ""}, "6230501000000014", ResponseCode.FORMAT_ERROR),
        ({"33": ISS}, "6230501000000014", ResponseCode.FORMAT_ERROR),  # forwarding institution is not the sender
        ({}, "4111111111111111", ResponseCode.INVALID_CARD),  # unknown BIN
        ({}, "7000001000000000", ResponseCode.INVALID_CARD),  # its owner has no issuer host
    ],
)
def test_requests_the_switch_answers_itself(changes: dict[str, str], pan: str, code: ResponseCode) -> None:
    outcome = core().route(message(pan=pan, changes=changes))
    assert isinstance(outcome, Reply)
    assert outcome.fields["39"] == code and outcome.record.response_code is code
    assert outcome.fields["t"] == Mti.FINANCIAL_RESPONSE and outcome.fields["37"] == "120400000700"
    assert outcome.record.masked_pan.startswith(pan[:6]) and "******" in outcome.record.masked_pan


def test_a_request_outside_the_message_set_is_answered_40_and_not_journalled() -> None:
    outcome = core().route(message(changes={"3": "990000"}))
    assert isinstance(outcome, NotInMessageSet)
    assert outcome.fields["39"] == ResponseCode.FUNCTION_NOT_SUPPORTED and outcome.fields["37"] == "120400000700"


def test_forward_sets_field_100_and_keeps_the_pin_block_for_translation() -> None:
    outcome = core().route(message())
    assert isinstance(outcome, Forward)
    assert outcome.fields["100"] == ISS and outcome.issuer.institution_id == ISS
    assert outcome.translate_pin and outcome.card_type is CardType.DEBIT and outcome.op is LedgerOp.PURCHASE


@pytest.mark.parametrize(
    ("limit", "op", "amount", "stood_in", "code"),
    [
        (10_000, LedgerOp.PURCHASE, 10_000, False, ResponseCode.APPROVED),
        (10_000, LedgerOp.PURCHASE, 10_001, False, ResponseCode.ISSUER_UNAVAILABLE),
        (None, LedgerOp.PURCHASE, 1, False, ResponseCode.ISSUER_UNAVAILABLE),
        (10_000, LedgerOp.REFUND, 100, False, ResponseCode.ISSUER_UNAVAILABLE),
        (10_000, LedgerOp.REVERSAL, 100, True, ResponseCode.APPROVED),
        (10_000, LedgerOp.REVERSAL, 100, False, ResponseCode.ISSUER_UNAVAILABLE),
        (None, LedgerOp.VOID, 100, True, ResponseCode.APPROVED),
    ],
)
def test_stand_in_policy(limit: int | None, op: LedgerOp, amount: int, stood_in: bool, code: ResponseCode) -> None:
    switch = core(limit)
    forward = switch.route(message(op, amount=amount))
    assert isinstance(forward, Forward)
    reply = switch.stand_in(forward, original_stood_in=stood_in)
    assert reply.fields["39"] == code and reply.record.stand_in
    if code is ResponseCode.APPROVED and op is LedgerOp.PURCHASE:
        assert reply.fields["38"] == "S00001"


def test_relay_and_an_unknown_issuer_code_is_96() -> None:
    switch = core()
    forward = switch.route(message())
    assert isinstance(forward, Forward)
    relayed = switch.relay(forward, {"39": "00", "38": "123456"})
    assert (relayed.fields["39"], relayed.fields["38"], relayed.record.auth_code) == ("00", "123456", "123456")
    assert switch.relay(forward, {"39": "ZZ"}).fields["39"] == ResponseCode.SYSTEM_MALFUNCTION


def test_a_reversal_is_owed_only_when_the_switch_did_not_approve_a_money_moving_request() -> None:
    switch = core(None)
    forward = switch.route(message())
    assert isinstance(forward, Forward)
    declined = switch.stand_in(forward)
    owed = switch.issuer_reversal(forward, declined)
    assert owed is not None
    assert owed["t"] == Mti.REVERSAL and owed["37"] == "120400000700" and owed["100"] == ISS
    assert owed["90"] == "0200" + "000007" + "1204" + "093000" + f"{ACQ:0>11}" * 2
    assert "52" not in owed and "35" not in owed
    approving = core(10_000)
    forward = approving.route(message())
    assert isinstance(forward, Forward)
    assert approving.issuer_reversal(forward, approving.stand_in(forward)) is None
    balance = core(None).route(message(LedgerOp.BALANCE))
    assert isinstance(balance, Forward)
    assert core(None).issuer_reversal(balance, core(None).stand_in(balance)) is None


def _journalled(changes: dict[str, str] | None = None) -> tuple[SwitchCore, LegRecord]:
    switch = core()
    outcome = switch.route(message(changes=changes))
    assert isinstance(outcome, Forward)
    return switch, switch.relay(outcome, {"39": "00", "38": "123456"}).record


@pytest.mark.parametrize(
    ("changes", "differs"),
    [
        ({}, []),
        ({"7": "1204093500"}, []),  # a resend may carry a new transmission time
        ({"4": "000000005001"}, ["amount"]),
        ({"2": "6230501000000022"}, ["pan"]),
        ({"t": "0220", "3": "200000"}, ["mti", "op"]),  # a refund under the purchase's key (same class 02)
        ({"11": "000008", "41": "10000002"}, ["stan", "terminal"]),
        ({"49": "840", "42": "898100000000002"}, ["currency", "merchant"]),
        ({"3": "990000"}, ["op"]),
    ],
)
def test_a_repeated_key_is_compared_part_by_part(changes: dict[str, str], differs: list[str]) -> None:
    switch, known = _journalled()
    repeat = message(changes=changes).fields
    assert switch.repeat_differences(known, repeat, pan_fingerprint="") == differs
    if differs:
        refused = switch.refuse_repeat(repeat, known)
        assert (refused["39"], refused["37"]) == (ResponseCode.DUPLICATE, "120400000700")


def test_a_pan_with_the_same_mask_is_told_apart_by_its_keyed_fingerprint() -> None:
    switch, known = _journalled()
    known = dataclasses.replace(known, pan_fingerprint="first-card")
    same_mask = message(pan="6230501234560014").fields  # 623050******0014 like the first
    assert switch.repeat_content(same_mask)["pan"] == known.masked_pan
    assert switch.repeat_differences(known, same_mask, pan_fingerprint="another-card") == ["pan"]
    assert switch.repeat_differences(known, message().fields, pan_fingerprint="first-card") == []
