"""The POS and host codecs: hand-checked vectors for every field format, round trips, and fuzz."""

from __future__ import annotations

import string
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from wire.codec import (
    decode_host,
    decode_pos_body,
    encode_host,
    encode_pos_body,
    encode_pos_body_with_mac,
    pos_body_mac,
    pos_mac_block,
)
from wire.errors import MessageDecodeError, MessageEncodeError
from wire.specs import HOST_FIELDS, HOST_SPEC, POS_SPEC, POS_TRACK_FIELDS

# (field, value, hex of what follows the bitmap) — each checked by hand against PROTOCOL.md §1.
POS_VECTORS = [
    ("2", "6200001000000003", "16" + "6200001000000003"),  # LLVAR, 1-byte BCD length, even digits
    ("2", "62000060000000061", "17" + "62000060000000061F"),  # odd digits padded right with F
    ("3", "310000", "310000"),
    ("4", "000000001234", "000000001234"),
    ("11", "000123", "000123"),
    ("12", "213045", "213045"),
    ("13", "1124", "1124"),
    ("14", "3012", "3012"),
    ("15", "1125", "1125"),
    ("22", "021", "0210"),  # n3 in 2 bytes, padded right with 0
    ("23", "001", "0001"),  # n3 in 2 bytes, padded left with 0
    ("25", "06", "06"),
    ("26", "06", "06"),
    ("32", "48009999", "08" + "48009999"),
    ("35", "6200001000000003=30122011630800000", "34" + "6200001000000003D30122011630800000"),
    ("35", "6200001000000003=3012201163", "27" + "6200001000000003D3012201163F"),  # odd: F pad
    ("36", "996=1", "0005" + "996D1F"),  # LLLVAR: 2-byte BCD length
    ("37", "263280000001", b"263280000001".hex()),
    ("38", "000123", b"000123".hex()),
    ("39", "A0", "4130"),
    ("41", "10000001", b"10000001".hex()),
    ("42", "898100000000001", b"898100000000001".hex()),
    ("44", "OK", "02" + "4F4B"),  # LLVAR ASCII, 1-byte BCD length
    ("48", "123", "0003" + "1230"),  # LLLVAR BCD, odd digits padded right with 0
    ("49", "156", "313536"),
    ("52", "AB7374D801F4A390", "AB7374D801F4A390"),
    ("53", "2600000000000000", "2600000000000000"),
    ("54", "0002156C000000001000", "0020" + b"0002156C000000001000".hex()),
    ("55", "9F2701", "0003" + "9F2701"),  # LLLVAR binary: length counts bytes
    ("60", "22000001000", "0011" + "220000010000"),
    ("61", "000001000123", "0012" + "000001000123"),
    ("62", "00" * 40, "0040" + "00" * 40),
    ("63", "CUP", "0003" + "435550"),
    ("64", "4336444438374146", "4336444438374146"),
]


@pytest.mark.parametrize(("field", "value", "expected"), POS_VECTORS)
def test_pos_field_vectors(field: str, value: str, expected: str) -> None:
    body = encode_pos_body({"t": "0200", field: value})
    assert body[:2] == b"\x02\x00"
    assert body[10:].hex().upper() == expected.upper()
    assert decode_pos_body(body) == {"t": "0200", field: value}


def test_encode_never_mutates_its_input() -> None:
    fields = {"t": "0200", "2": "6200001000000003", "35": "6200001000000003=3012"}
    copy = dict(fields)
    encode_pos_body(fields)
    assert fields == copy


def _value(spec: dict[str, Any], field: str, track: bool) -> st.SearchStrategy[str]:
    fixed = spec["len_type"] == 0
    size = spec["max_len"]
    if spec["data_enc"] == "b" and spec.get("len_count") == "nibbles":
        if track:
            return st.tuples(
                st.text("0123456789", min_size=1, max_size=19), st.text("0123456789", max_size=max(0, size - 20))
            ).map(lambda p: f"{p[0]}={p[1]}")
        alphabet = "0123456789"
        return st.text(alphabet, min_size=size, max_size=size) if fixed else st.text(alphabet, max_size=size)
    if spec["data_enc"] == "b":
        nbytes = st.binary(min_size=size, max_size=size) if fixed else st.binary(max_size=size)
        return nbytes.map(lambda b: b.hex().upper())
    chars = string.ascii_letters + string.digits + " -./"
    return st.text(chars, min_size=size, max_size=size) if fixed else st.text(chars, max_size=min(size, 60))


POS_FIELDS = sorted((k for k in POS_SPEC if k.isdigit()), key=int)


@st.composite
def pos_messages(draw: st.DrawFn) -> dict[str, str]:
    chosen = draw(st.lists(st.sampled_from(POS_FIELDS), unique=True, max_size=12))
    fields = {"t": draw(st.sampled_from(["0200", "0210", "0800", "0400", "0500"]))}
    for field in chosen:
        fields[field] = draw(_value(POS_SPEC[field], field, field in POS_TRACK_FIELDS))
    return fields


@st.composite
def host_messages(draw: st.DrawFn) -> dict[str, str]:
    chosen = draw(st.lists(st.sampled_from(HOST_FIELDS), unique=True, max_size=12))
    fields = {"t": draw(st.sampled_from(["0200", "0210", "0400", "0100"]))}
    for field in chosen:
        fields[field] = draw(_value(HOST_SPEC[field], field, False))
    return fields


@given(pos_messages())
@example({"t": "0200", "22": "020", "23": "100", "48": "0"})
@example({"t": "0210", "2": "1234567890123456789", "35": "123=4", "36": "1=", "60": "1", "61": "1234567890123"})
def test_pos_round_trip(fields: dict[str, str]) -> None:
    assert decode_pos_body(encode_pos_body(fields)) == dict(sorted(fields.items(), key=lambda kv: _order(kv[0])))


@given(host_messages())
def test_host_round_trip(fields: dict[str, str]) -> None:
    assert decode_host(encode_host(fields)) == dict(sorted(fields.items(), key=lambda kv: _order(kv[0])))


def _order(key: str) -> int:
    return -1 if key == "t" else int(key)


@given(st.binary(max_size=300))
def test_any_bytes_decode_or_raise_our_error(data: bytes) -> None:
    for decode in (decode_pos_body, decode_host):
        try:
            decode(data)
        except MessageDecodeError as exc:
            assert exc.field is not None or exc.offset is not None or exc.reason


def test_errors_name_field_and_offset_but_never_the_value() -> None:
    body = encode_pos_body({"t": "0200", "2": "6200001000000003", "4": "000000001234"})
    with pytest.raises(MessageDecodeError) as info:
        decode_pos_body(body[:-3])
    assert info.value.field == "4" and info.value.offset is not None
    assert "6200001000000003" not in str(info.value)
    with pytest.raises(MessageEncodeError) as enc:
        encode_pos_body({"t": "0200", "2": "62000010000000039999999"})
    assert enc.value.field == "2" and "6200" not in str(enc.value)


def test_bitmap_bit_outside_the_contract_is_named() -> None:
    body = bytearray(encode_pos_body({"t": "0200", "3": "000000"}))
    body[2] |= 0x08  # field 5
    with pytest.raises(MessageDecodeError) as info:
        decode_pos_body(bytes(body))
    assert info.value.field == "5" and info.value.offset == 2


def test_mac_block_is_the_body_before_field_64() -> None:
    body = encode_pos_body_with_mac({"t": "0200", "3": "000000"}, lambda block: block[:8].ljust(8, b"\0"))
    assert pos_body_mac(body) == body[-8:]
    assert pos_mac_block(body) == body[:-8]
    assert pos_body_mac(encode_pos_body({"t": "0800"})) is None


# (fields, the whole message as ASCII) — ISO 8583:1987 ASCII, checked by hand against PROTOCOL.md §2.
HOST_VECTORS = [
    (
        {"t": "0200", "2": "6200001000000003", "4": "000000012800", "90": "0200000123112421304500000000001" + "0" * 11},
        "0200"
        + "D000000000000000"  # bits 1 (secondary bitmap), 2, 4
        + "0000004000000000"  # bit 90 = secondary bit 26
        + "16"
        + "6200001000000003"
        + "000000012800"
        + "0200000123112421304500000000001"
        + "0" * 11,
    ),
    (
        {"t": "0210", "35": "6200001000000003=3012", "39": "00", "54": "0002156C000000001000"},
        "0210" + "0000000022000400" + "21" + "6200001000000003=3012" + "00" + "020" + "0002156C000000001000",
    ),
    ({"t": "0800", "7": "1124213045", "48": "X"}, "0800" + "0200000000010000" + "1124213045" + "001X"),
]


@pytest.mark.parametrize(("fields", "expected"), HOST_VECTORS)
def test_host_vectors(fields: dict[str, str], expected: str) -> None:
    assert encode_host(fields) == expected.encode("ascii")
    assert decode_host(expected.encode("ascii")) == fields


@pytest.mark.parametrize(
    "fields",
    [
        {"t": "0200", "2": "62000010000000AB"},  # hex letters are not BCD digits
        {"t": "0200", "35": "6200001000000003=30AB"},
        {"t": "0200", "3": "00000A"},
        {"t": "02A0"},
        {"t": "0200", "5": "000000000001"},  # not a POS field
        {"t": "0200", "22": "21"},  # n3 must be 3 digits
    ],
)
def test_pos_encode_refuses_what_the_contract_does_not_allow(fields: dict[str, str]) -> None:
    with pytest.raises(MessageEncodeError) as info:
        encode_pos_body(fields)
    assert info.value.field in fields
    for value in fields.values():
        if len(value) > 4:
            assert value not in str(info.value)


def test_bad_nibble_in_a_track_names_field_and_offset() -> None:
    body = encode_pos_body({"t": "0200", "2": "62000060000000061", "35": "62=1"})
    with pytest.raises(MessageDecodeError) as info:
        decode_pos_body(body[:-1] + b"\xaf")
    # MTI 2 + bitmap 8 + field 2 (1 length byte + 9 data bytes) = 20
    assert (info.value.field, info.value.offset) == ("35", 20)
    with pytest.raises(MessageDecodeError) as mti:
        decode_pos_body(b"\x0a\x00" + bytes(8))
    assert (mti.value.field, mti.value.offset) == ("t", 0)


def test_secondary_bitmap_bit_is_refused_on_the_pos_link() -> None:
    with pytest.raises(MessageDecodeError) as info:
        decode_pos_body(b"\x02\x00\x80" + bytes(7) + bytes(8))
    assert (info.value.field, info.value.offset) == ("1", 2)


def test_mac_helper_with_the_cup_ecb_mac_and_the_protocol_test_mak() -> None:
    from wire.paycrypto import mac_cup_ecb

    mak = bytes.fromhex("1C587F1C13924FEFFEDCBA9876543210")  # PROTOCOL.md §6
    fields = {"t": "0200", "2": "6200001000000003", "3": "000000", "4": "000000012800", "11": "000001"}
    body = encode_pos_body_with_mac(fields, lambda block: mac_cup_ecb(mak, block))
    mac = pos_body_mac(body)
    assert mac is not None and mac == mac_cup_ecb(mak, pos_mac_block(body))
    assert all(chr(b) in "0123456789ABCDEF" for b in mac)  # the CUP MAC is 8 hex characters as ASCII
    assert decode_pos_body(body)["64"] == mac.hex().upper()
    assert {k: v for k, v in decode_pos_body(body).items() if k != "64"} == fields
    tampered = body[:-9] + bytes([body[-9] ^ 1]) + body[-8:]
    assert mac_cup_ecb(mak, pos_mac_block(tampered)) != mac
    with pytest.raises(MessageEncodeError) as info:
        encode_pos_body_with_mac(fields, lambda block: b"short")
    assert info.value.field == "64"
    with pytest.raises(MessageDecodeError):
        pos_mac_block(b"\x02\x00")


@given(st.binary(max_size=120))
def test_host_bytes_after_a_valid_prefix_decode_or_raise_our_error(tail: bytes) -> None:
    try:
        decode_host(b"0200" + tail)
    except MessageDecodeError as exc:
        assert exc.field is not None or exc.offset is not None
