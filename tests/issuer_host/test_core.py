"""The issuer host's rules without a network: switch-link request → ledger request and PIN check, and back."""

from __future__ import annotations

import pytest

from core_ledger.api import LedgerAnswer, LedgerOp
from issuer_host.core import Accepted, accept, answer_fields
from wire.constants import ResponseCode
from wire.fields import track2_pvv

ISSUER = "63050000"
REQUEST = {
    "t": "0200",
    "2": "6230501000000014",
    "3": "000000",
    "4": "000000001234",
    "7": "1204093000",
    "11": "000007",
    "12": "093000",
    "13": "1204",
    "25": "00",
    "32": "48009999",
    "33": "48009999",
    "35": "6230501000000014=30122011123400000",
    "37": "120400000700",
    "41": "10000001",
    "42": "898100000000001",
    "49": "156",
    "52": "0011223344556677",
    "100": ISSUER,
}


def test_a_purchase_becomes_the_ledger_request_keyed_by_acquirer_and_rrn() -> None:
    accepted = accept(REQUEST, issuer_id=ISSUER)
    assert isinstance(accepted, Accepted)
    request = accepted.request
    assert (request.op, request.key, request.amount, request.terminal_id) == (
        LedgerOp.PURCHASE,
        ("48009999", "120400000700"),
        1234,
        "10000001",
    )
    assert accepted.pin is not None and (accepted.pin.pvki, accepted.pin.pvv) == ("1", "1234")
    assert "1234" not in repr(accepted.pin)  # the PVV and PIN block stay out of reprs


def test_a_reversal_names_its_original_by_rrn_and_field_90() -> None:
    fields = {**REQUEST, "t": "0400", "90": "0200000007120409300000048009999000480099990"[:42]}
    fields.pop("52")
    accepted = accept(fields, issuer_id=ISSUER)
    assert isinstance(accepted, Accepted) and accepted.request.op is LedgerOp.REVERSAL
    original = accepted.request.original
    assert original is not None and (original.rrn, original.stan, original.local_date) == (
        "120400000700",
        "000007",
        "1204",
    )


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"3": "990000"}, ResponseCode.FUNCTION_NOT_SUPPORTED),
        ({"37": ""}, ResponseCode.FORMAT_ERROR),
        ({"4": "00000000012X"}, ResponseCode.FORMAT_ERROR),
        ({"100": "64100000"}, ResponseCode.INVALID_CARD),
        ({"52": "not hex at all!!"}, ResponseCode.PIN_FORMAT_ERROR),
        ({"35": ""}, ResponseCode.INCORRECT_PIN),  # a PIN, and no PVV to check it against
    ],
)
def test_requests_the_issuer_answers_without_its_ledger(changes: dict[str, str], code: ResponseCode) -> None:
    fields = {k: v for k, v in {**REQUEST, **changes}.items() if v}
    assert accept(fields, issuer_id=ISSUER) == code


def test_answer_fields_echo_the_request_and_carry_the_auth_code_only_when_approved() -> None:
    approved = LedgerAnswer(response_code=ResponseCode.APPROVED, rrn="120400000700", auth_code="000042")
    fields = answer_fields(REQUEST, ResponseCode.APPROVED, approved)
    assert (fields["t"], fields["39"], fields["38"], fields["37"], fields["100"]) == (
        "0210",
        "00",
        "000042",
        "120400000700",
        ISSUER,
    )
    assert "52" not in fields and "35" not in fields
    assert "38" not in answer_fields(REQUEST, ResponseCode.INCORRECT_PIN)
    assert track2_pvv("6230501000000014=3012") is None
