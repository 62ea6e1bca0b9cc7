"""Host-link mapping: LedgerRequest / LedgerAnswer ↔ ISO 8583 ASCII, round trips and bad input."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from core_ledger.api import ROUTES, LedgerAnswer, LedgerOp, LedgerRequest, OriginalRef
from core_ledger.hostlink import answer_fields, answer_from_fields, request_fields, request_from_fields
from wire.codec import decode_host, encode_host
from wire.constants import ResponseCode
from wire.errors import MessageDecodeError


def _digits(n: int) -> st.SearchStrategy[str]:
    return st.text("0123456789", min_size=n, max_size=n)


ORIGINAL_OPS = {
    LedgerOp.PREAUTH_CANCEL,
    LedgerOp.PREAUTH_COMPLETION,
    LedgerOp.PREAUTH_COMPLETION_VOID,
    LedgerOp.VOID,
    LedgerOp.REFUND,
    LedgerOp.REVERSAL,
}

originals = st.builds(
    OriginalRef,
    mti=st.sampled_from(["0100", "0200", "0220"]),
    stan=_digits(6),
    local_date=st.sampled_from(["0101", "1124", "1231"]),
    local_time=_digits(6),
    acquirer_id=st.text("0123456789", min_size=1, max_size=11).map(lambda s: s.lstrip("0") or "0"),
)


@st.composite
def requests(draw: st.DrawFn) -> LedgerRequest:
    op = draw(st.sampled_from(list(LedgerOp)))
    return LedgerRequest(
        op=op,
        acquirer_id=draw(st.text("0123456789", min_size=1, max_size=11)),
        terminal_id=draw(st.text("ABCDEFGH0123456789", min_size=8, max_size=8)),
        merchant_id=draw(st.text("0123456789", min_size=15, max_size=15)),
        stan=draw(_digits(6)),
        local_time=draw(_digits(6)),
        local_date=draw(st.sampled_from(["0101", "1124", "1231"])),
        transmission=draw(_digits(10)),
        pan=draw(st.text("0123456789", min_size=13, max_size=19)),
        rrn=draw(st.text("0123456789ABC", min_size=12, max_size=12)),
        amount=draw(st.integers(min_value=0, max_value=10**12 - 1)),
        expiry=draw(st.none() | _digits(4)),
        pos_entry_mode=draw(st.none() | st.sampled_from(["021", "051"])),
        condition_code="06" if ROUTES[op][2] == "06" else "00",
        auth_code=draw(st.none() | _digits(6)),
        original=draw(originals) if op in ORIGINAL_OPS else None,
        target_pan=draw(st.text("0123456789", min_size=13, max_size=19)) if op is LedgerOp.TRANSFER else None,
    )


@given(requests())
def test_request_round_trips_through_the_wire(request: LedgerRequest) -> None:
    fields = decode_host(encode_host(request_fields(request)))
    assert request_from_fields(fields) == request


@given(
    code=st.sampled_from(list(ResponseCode)),
    balance=st.none() | st.integers(min_value=-(10**12) + 1, max_value=10**12 - 1),
    available=st.none() | st.integers(min_value=-(10**12) + 1, max_value=10**12 - 1),
    auth=st.none() | _digits(6),
)
@example(code=ResponseCode.APPROVED, balance=0, available=-1, auth=None)
def test_answer_round_trips_and_echoes_the_match_key(
    code: ResponseCode, balance: int | None, available: int | None, auth: str | None
) -> None:
    req = LedgerRequest(
        op=LedgerOp.BALANCE,
        acquirer_id="48009999",
        terminal_id="10000001",
        merchant_id="898100000000001",
        stan="000123",
        local_time="120000",
        local_date="1124",
        transmission="1124120000",
        pan="6200001000000003",
        rrn="000000000123",
    )
    answer = LedgerAnswer(response_code=code, rrn=req.rrn, auth_code=auth, balance=balance, available=available)
    request_wire = request_fields(req)
    wire = decode_host(encode_host(answer_fields(request_wire, answer)))
    assert wire["t"] == "0210"
    assert all(wire[k] == request_wire[k] for k in ("11", "13", "32", "41"))
    assert answer_from_fields(wire) == answer


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"t": "0200", "3": "000000", "25": "00"}, "4"),
        ({"t": "0200", "3": "999999", "4": "000000000001"}, "3"),
        ({"t": "0200", "3": "000000", "4": "00000000000X"}, "4"),
        (
            {
                "t": "0400",
                "3": "000000",
                "4": "1",
                "32": "1",
                "41": "T",
                "11": "1",
                "12": "1",
                "13": "1",
                "2": "1",
                "37": "000000000001",
                "90": "12",
            },
            "90",
        ),
    ],
)
def test_incomplete_requests_name_the_field(fields: dict[str, str], field: str) -> None:
    with pytest.raises(MessageDecodeError) as caught:
        request_from_fields(fields)
    assert caught.value.field == field


@given(st.binary(max_size=200))
def test_any_bytes_decode_or_raise_the_documented_error(data: bytes) -> None:
    try:
        fields = decode_host(data)
    except MessageDecodeError:
        return
    with contextlib.suppress(MessageDecodeError):
        request = request_from_fields(fields)
        assert request.rrn == fields.get("37", request.rrn)  # what decodes carries the message's own RRN
