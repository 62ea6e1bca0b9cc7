"""Whole POS frames: parse/build, error offsets, and "any bytes parse or raise a WireError"."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from wire.codec import decode_pos_body, encode_pos_body
from wire.errors import HeaderError, MessageDecodeError, TpduError, WireError
from wire.header import PosHeader
from wire.posframe import BODY_OFFSET, PosFrame
from wire.tpdu import Tpdu

SIGN_ON = encode_pos_body({"t": "0800", "11": "000001", "41": "10000001", "42": "898100000000001", "60": "00000001003"})


def test_build_then_parse_gives_the_same_frame() -> None:
    frame = PosFrame(tpdu=Tpdu(dst="0003", src="0000"), header=PosHeader(app_type="60"), body=SIGN_ON)
    payload = frame.to_bytes()
    assert payload[:11] == bytes.fromhex("6000030000" + "603100000000")
    assert PosFrame.parse(payload) == frame
    wire = frame.to_wire()
    assert wire[:2] == len(payload).to_bytes(2, "big") and wire[2:] == payload


@pytest.mark.parametrize(
    ("payload", "error", "offset"),
    [
        (b"", TpduError, 0),
        (bytes.fromhex("6100030000613100000000") + SIGN_ON, TpduError, 0),
        (bytes.fromhex("6000030000" + "6131"), HeaderError, 5),
        (bytes.fromhex("6000030000" + "61310000A000") + SIGN_ON, HeaderError, 9),
        (bytes.fromhex("6000030000" + "613100000000"), MessageDecodeError, BODY_OFFSET),
    ],
)
def test_parse_errors_name_the_offset(payload: bytes, error: type[WireError], offset: int) -> None:
    with pytest.raises(error) as info:
        PosFrame.parse(payload)
    assert info.value.offset == offset


@given(st.binary(max_size=200))
@example(bytes.fromhex("6000030000613100000000") + b"\x02\x00" + b"\xff" * 8)
def test_any_bytes_parse_and_decode_or_raise_a_wire_error(payload: bytes) -> None:
    try:
        frame = PosFrame.parse(payload)
        decode_pos_body(frame.body)
    except WireError as exc:
        assert exc.offset is not None or exc.field is not None


@given(st.binary(max_size=120))
def test_bytes_after_a_valid_prefix_decode_or_raise_a_wire_error(tail: bytes) -> None:
    try:
        decode_pos_body(SIGN_ON[:10] + tail)
    except WireError as exc:
        assert exc.offset is not None or exc.field is not None
