"""The POS request decoded once, at the edge: sub-fields 60, 61, 48 (0500), 55 and 59 as parsed values, and a
malformed sub-field kept as an error naming its field and the field's offset in the body."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from wire.ascii_tlv import encode_ascii_tlv, parse_ascii_tlv
from wire.codec import encode_pos_body, pos_field_offsets
from wire.errors import MessageDecodeError, MessageEncodeError
from wire.fields import CardTotals, Field60, Field61, SettlementTotals
from wire.posmessage import PosMessage

DIGITS = "0123456789"
BASE = {"t": "0200", "3": "000000", "11": "000123", "41": "10000001"}


def digits(size: int) -> st.SearchStrategy[str]:
    return st.text(DIGITS, min_size=size, max_size=size)


field60s = st.builds(
    Field60,
    txn_type=digits(2),
    batch=digits(6),
    network_code=digits(3),
    extra=st.text(DIGITS, max_size=2),  # 60.4 read capability, 60.5 chip condition (PROTOCOL.md §7)
)
field61s = st.builds(Field61, batch=digits(6), stan=digits(6), date=st.none() | digits(4))
card_totals = st.builds(
    CardTotals,
    debit_amount=st.integers(0, 10**12 - 1),
    debit_count=st.integers(0, 999),
    credit_amount=st.integers(0, 10**12 - 1),
    credit_count=st.integers(0, 999),
    flag=digits(1),
)


@given(f60=field60s, f61=st.none() | field61s)
def test_60_and_61_round_trip_through_the_body(f60: Field60, f61: Field61 | None) -> None:
    fields = {**BASE, "60": f60.encode()} | ({"61": f61.encode()} if f61 else {})
    message = PosMessage.decode(encode_pos_body(fields))
    assert message.field60 == f60 and message.field61 == f61
    assert message.errors == {} and message.mti == "0200" and dict(message.fields) == fields
    assert message.correlation_id == "T10000001-000123"


@given(domestic=card_totals, foreign=card_totals)
def test_settlement_totals_are_parsed_in_a_0500_only(domestic: CardTotals, foreign: CardTotals) -> None:
    totals = SettlementTotals(domestic=domestic, foreign=foreign)
    fields = {"t": "0500", "11": "000001", "48": totals.encode(), "60": "00000001201"}
    assert PosMessage.decode(encode_pos_body(fields)).totals == totals
    assert PosMessage.decode(encode_pos_body({**fields, "t": "0200"})).totals is None  # 48 is other data there


@given(items=st.lists(st.tuples(st.text("AZ09", min_size=2, max_size=2), st.text(max_size=40)), max_size=4))
@example(items=[("A3", "6200000000000000003"), ("A4", "")])
def test_ascii_tlv_round_trip(items: list[tuple[str, str]]) -> None:
    assert parse_ascii_tlv(encode_ascii_tlv(items)) == tuple(items)


@pytest.mark.parametrize(
    ("text", "offset"),
    [("A3", 0), ("A3019123", 0), ("A3x1x", 2), ("*3001a", 0), ("A3001aA2", 6)],
)
def test_bad_ascii_tlv_names_field_59_and_the_offset(text: str, offset: int) -> None:
    with pytest.raises(MessageDecodeError) as info:
        parse_ascii_tlv(text)
    assert (info.value.field, info.value.offset) == ("59", offset)


def test_ascii_tlv_refuses_to_encode_a_bad_tag() -> None:
    with pytest.raises(MessageEncodeError):
        encode_ascii_tlv([("A", "x")])


@pytest.mark.parametrize(
    ("field", "value"),
    [("60", "2200"), ("60", "22000001"[:7]), ("61", "0000010001"), ("61", "00000100012311")],
)
def test_a_malformed_sub_field_is_kept_as_an_error_with_the_fields_offset(field: str, value: str) -> None:
    body = encode_pos_body({**BASE, "60": "22000001", field: value})
    message = PosMessage.decode(body)  # the body itself decodes: the request can still be answered (30)
    error = message.errors[field]
    assert error.field == field and error.offset == pos_field_offsets(body)[field]
    assert getattr(message, f"field{field}") is None
    assert value not in str(error)  # names where, never what


def test_malformed_settlement_totals_and_icc_data_are_errors() -> None:
    body = encode_pos_body({"t": "0500", "11": "000001", "48": "12", "55": "9F2608", "60": "00000001201"})
    message = PosMessage.decode(body)
    assert set(message.errors) == {"48", "55"} and message.totals is None and message.icc is None
    assert "at byte" in message.errors["55"].reason  # the TLV parser's own offset, inside the value


def test_icc_data_is_parsed_into_data_objects() -> None:
    body = encode_pos_body({**BASE, "55": "9F2608" + "11" * 8 + "9505" + "00" * 5})
    assert PosMessage.decode(body).icc == (("9F26", b"\x11" * 8), ("95", b"\x00" * 5))


@given(st.binary(max_size=80))
def test_any_bytes_either_decode_or_raise_the_documented_error(body: bytes) -> None:
    try:
        message = PosMessage.decode(body)
    except MessageDecodeError:
        return
    assert message.body == body
