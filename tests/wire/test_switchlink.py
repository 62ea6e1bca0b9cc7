"""The switch link format (PROTOCOL.md §10): header and body round trips, the MAC block, precise errors."""

from __future__ import annotations

import contextlib
import functools

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from wire.errors import MessageEncodeError, WireError
from wire.paycrypto import mac_x919
from wire.switchlink import (
    SWITCH_HEADER_LEN,
    RejectCode,
    SwitchHeader,
    SwitchHeaderError,
    SwitchMessageError,
    decode_switch_message,
    encode_switch_message,
    reject_frame,
)

ZAK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
MAC = functools.partial(mac_x919, ZAK)
ACQUIRER, SWITCH, ISSUER = "48021000", "00010000", "63050000"
HEADER = SwitchHeader(destination_id=SWITCH, source_id=ACQUIRER, transaction_info="123456")
REQUEST = {
    "t": "0200",
    "2": "6200001000000003",
    "3": "000000",
    "4": "000000001234",
    "7": "1204093000",
    "11": "123456",
    "12": "093000",
    "13": "1204",
    "18": "5411",
    "22": "021",
    "25": "00",
    "32": ACQUIRER,
    "33": ACQUIRER,
    "37": "000000000042",
    "41": "10000001",
    "42": "123456789012345",
    "49": "156",
    "52": "C880AFA543562BE6",
    "100": ISSUER,
}

ids = st.text("0123456789", min_size=8, max_size=8)


@given(
    destination=ids,
    source=ids,
    batch=st.integers(0, 255),
    info=st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=8),
    user=st.integers(0, 255),
    reject=st.sampled_from(RejectCode),
    body_len=st.integers(0, 500),
)
def test_header_round_trips(
    destination: str, source: str, batch: int, info: str, user: int, reject: RejectCode, body_len: int
) -> None:
    header = SwitchHeader(
        destination_id=destination,
        source_id=source,
        batch=batch,
        transaction_info=info,
        user_info=user,
        reject_code=reject,
    )
    raw = header.to_bytes(body_len)
    assert len(raw) == SWITCH_HEADER_LEN
    assert raw[0] == SWITCH_HEADER_LEN and raw[2:6] == f"{SWITCH_HEADER_LEN + body_len:04d}".encode()
    assert SwitchHeader.parse(raw + b"x" * body_len) == header


@given(
    amount=st.integers(1, 10**12 - 1),
    stan=st.integers(0, 999_999),
    pan=st.text("0123456789", min_size=13, max_size=19),
    with_pin=st.booleans(),
)
def test_message_round_trips_and_the_mac_covers_the_body(amount: int, stan: int, pan: str, with_pin: bool) -> None:
    fields = {**REQUEST, "2": pan, "4": f"{amount:012d}", "11": f"{stan:06d}"}
    if not with_pin:
        del fields["52"]
    frame = encode_switch_message(HEADER, fields, MAC)
    message = decode_switch_message(frame)
    assert message.header == HEADER
    assert {k: v for k, v in message.fields.items() if k != "128"} == fields
    assert message.mac == MAC(message.mac_block)
    assert frame[SWITCH_HEADER_LEN:].startswith(message.mac_block)
    assert message.fields["128"] == message.mac.hex().upper()


def test_a_changed_amount_changes_the_mac() -> None:
    frame = encode_switch_message(HEADER, REQUEST, MAC)
    tampered = frame.replace(b"000000001234", b"000000009234")
    message = decode_switch_message(tampered)
    assert message.mac != MAC(message.mac_block)


@pytest.mark.parametrize(
    ("mutate", "field", "offset"),
    [
        (lambda f: f[:40], None, 0),
        (lambda f: b"\x2f" + f[1:], "header length", 0),
        (lambda f: f[:1] + b"\x09" + f[2:], "header version", 1),
        (lambda f: f[:2] + b"0001" + f[6:], "total length", 2),
        (lambda f: f[:6] + b"4802100X   " + f[17:], "destination id", 6),
        (lambda f: f[:17] + b"12         " + f[28:], "source id", 17),
        (lambda f: f[:28] + b"\x00\x01\x00" + f[31:], "reserved", 28),
        (lambda f: f[:41] + b"ABCDE" + f[46:], "reject code", 41),
    ],
)
def test_header_errors_name_the_field_and_offset(mutate, field: str | None, offset: int) -> None:  # type: ignore[no-untyped-def]
    frame = encode_switch_message(HEADER, REQUEST, MAC)
    with pytest.raises(SwitchHeaderError) as info:
        decode_switch_message(mutate(frame))
    assert info.value.field == field and info.value.offset == offset


def test_body_errors_name_the_field() -> None:
    frame = encode_switch_message(HEADER, REQUEST, MAC)
    bad_acquirer = frame.replace(b"08" + ACQUIRER.encode() + b"08", b"08" + b"4802100A" + b"08", 1)
    with pytest.raises(SwitchMessageError) as info:
        decode_switch_message(bad_acquirer)
    assert info.value.field == "32"
    with pytest.raises(MessageEncodeError) as encode_info:
        encode_switch_message(HEADER, {**REQUEST, "100": "630500"}, MAC)
    assert encode_info.value.field == "100"
    with pytest.raises(MessageEncodeError) as encode_info:
        encode_switch_message(HEADER, {**REQUEST, "64": "00" * 8}, MAC)
    assert encode_info.value.field == "64"


def test_a_bitmap_bit_outside_the_contract_is_named() -> None:
    frame = bytearray(encode_switch_message(HEADER, REQUEST, MAC))
    bitmap_start = SWITCH_HEADER_LEN + 4
    primary = int(frame[bitmap_start : bitmap_start + 16], 16) | (1 << (64 - 5))  # field 5
    frame[bitmap_start : bitmap_start + 16] = f"{primary:016X}".encode()
    with pytest.raises(SwitchMessageError) as info:
        decode_switch_message(bytes(frame))
    assert info.value.field == "5"


def test_no_pan_in_errors() -> None:
    frame = encode_switch_message(HEADER, REQUEST, MAC)
    with pytest.raises(SwitchMessageError) as info:
        decode_switch_message(frame[:-30] + b"!" * 30)
    assert REQUEST["2"] not in str(info.value)


def test_reject_goes_back_to_the_sender_with_the_body_as_received() -> None:
    frame = encode_switch_message(HEADER, REQUEST, MAC)
    rejected = decode_switch_message(reject_frame(frame, RejectCode.MAC_FAILED, own_id=SWITCH))
    assert rejected.header.reject_code is RejectCode.MAC_FAILED
    assert (rejected.header.destination_id, rejected.header.source_id) == (ACQUIRER, SWITCH)
    assert rejected.header.transaction_info == "123456"
    assert rejected.fields["37"] == REQUEST["37"]
    garbage = reject_frame(b"\x00" * 10, RejectCode.HEADER_FORMAT, own_id=SWITCH)
    assert SwitchHeader.parse(garbage).reject_code is RejectCode.HEADER_FORMAT


@given(st.binary(max_size=300))
@example(b"\x2e\x02" + b"0046" + b"0" * 40)
def test_any_bytes_either_decode_or_raise_a_wire_error(data: bytes) -> None:
    with contextlib.suppress(WireError):
        decode_switch_message(data)
