"""The compact traced form (``wire/tracecompact.py``): whenever a frame has one, its dissection at read time is
exactly the write-time dissection of the frame itself (hypothesis over every field of both ISO specs, and over
malformed bodies), and it holds no card digit a mask hides, no PIN block, no key, no HSM field."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from tests.wire.test_dissect_trace import PAN, PIN_BLOCK, PURCHASE, TRACK2, payload
from tests.wire.test_fastcodec import HOST_MESSAGES, POS_MESSAGES, _mutated
from wire import refcodec
from wire.codec import decode_pos_body, encode_host
from wire.constants import Mti, ProcessingCode
from wire.header import PosHeader
from wire.masking import mask_pan, mask_track
from wire.posframe import PosFrame
from wire.tpdu import Tpdu
from wire.trace import describe
from wire.tracecompact import BatchMemo, compact_frame

#: What makes a POS frame keep its write-time dissection instead (the masking needs the field's meaning).
_MEANINGFUL = {"55", "59"}


def _pos_frame(body: bytes) -> bytes:
    return Tpdu(dst="0003", src="0000").to_bytes() + PosHeader().to_bytes() + body


def _needs_meaning(fields: dict[str, str]) -> bool:
    batch_upload = fields["t"] in (Mti.BATCH_UPLOAD, Mti.BATCH_UPLOAD_RESPONSE) and "48" in fields
    return bool(_MEANINGFUL & fields.keys()) or batch_upload


@given(POS_MESSAGES)
@example({"t": "0200", "2": PAN, "35": TRACK2, "52": PIN_BLOCK, "62": "AB" * 24})
@example({"t": "0200", "3": ProcessingCode.TRANSFER, "2": PAN, "48": "6200001000000011"})
@example({"t": "0200", "2": "62000", "35": "6=", "36": ""})
def test_a_pos_frame_reads_back_from_its_compact_form_as_it_was_dissected(fields: dict[str, str]) -> None:
    frame = _pos_frame(refcodec.encode_pos_body(fields))
    compact = compact_frame("pos", frame)
    if _needs_meaning(fields):
        assert compact is None
        return
    assert compact is not None and len(compact) == len(frame)  # a well-formed frame always has one
    assert describe("pos", compact) == describe("pos", frame)
    kept = decode_pos_body(PosFrame.parse(compact).body)
    card = {"2", "35", "36"} | ({"48"} if fields.get("3") == ProcessingCode.TRANSFER else set())
    for number in card & fields.keys():
        masked = mask_track(fields[number]) if "=" in fields[number] else mask_pan(fields[number])
        assert kept[number] == masked.replace("*", "0")  # only the digits the mask shows are kept
    for number in {"52", "62"} & fields.keys():
        assert set(kept[number]) <= {"0"}


@given(HOST_MESSAGES)
@example({"t": "0200", "2": PAN, "35": "6200001000000003=3012", "52": PIN_BLOCK, "62": "K" * 32})
def test_a_host_frame_reads_back_from_its_compact_form_as_it_was_dissected(fields: dict[str, str]) -> None:
    frame = refcodec.encode_host(fields)
    compact = compact_frame("host", frame)
    if compact is not None:
        assert describe("host", compact) == describe("host", frame)


@given(_mutated(POS_MESSAGES.map(refcodec.encode_pos_body)))
def test_a_malformed_pos_body_has_no_compact_form_or_reads_back_the_same(body: bytes) -> None:
    frame = _pos_frame(body)
    compact = compact_frame("pos", frame)
    assert compact is None or describe("pos", compact) == describe("pos", frame)


@given(_mutated(HOST_MESSAGES.map(refcodec.encode_host)))
@example(b"0000400000000000100000\x80000000000000000")  # a PIN block (52) that is not text: undecodable as it was
def test_a_malformed_host_message_has_no_compact_form_or_reads_back_the_same(data: bytes) -> None:
    compact = compact_frame("host", data)
    assert compact is None or describe("host", compact) == describe("host", data)


@given(st.binary(max_size=40))
def test_the_hsm_link_keeps_header_code_and_an_answers_error_code_only(tail: bytes) -> None:
    request, answer = b"0001DC" + tail, b"0001DD00" + tail
    assert compact_frame("hsm", request) == b"0001DC"
    assert compact_frame("hsm", answer) == b"0001DD00"
    for frame in (request, answer):
        shown = describe("hsm", frame)
        assert describe("hsm", compact_frame("hsm", frame) or b"") | {"length": shown["length"]} == shown


def test_a_purchase_keeps_no_card_digit_pin_block_or_key() -> None:
    compact = compact_frame("pos", payload(PURCHASE))
    assert compact is not None
    text = compact.hex().upper()
    assert PAN not in text and PIN_BLOCK not in text and "30122011630800000" not in text
    assert "620000" in text and "0003" in text  # what a masked PAN shows stays
    host = compact_frame("host", encode_host({"t": "0200", "2": PAN, "4": "000000012800"}))
    assert host is not None and PAN.encode() not in host and b"620000000000" in host


def test_the_switch_link_is_dissected_when_written() -> None:
    assert compact_frame("switch", b"anything") is None


def test_frames_of_one_shape_with_other_length_prefixes_are_walked_again() -> None:
    """Two purchases with the same bitmap and length, whose card fields split the length differently: the
    second must not reuse the first's spans (the shapes are remembered by the bytes of every length prefix)."""
    first = {"t": "0200", "2": "6212345678901234", "35": "6212345678901234=301299", "52": PIN_BLOCK}
    second = {"t": "0200", "2": "621234567890123456", "35": "6212345678901234=3012", "52": PIN_BLOCK}
    frames = [(fields, _pos_frame(refcodec.encode_pos_body(fields))) for fields in (first, second, first)]
    assert len(frames[0][1]) == len(frames[1][1]) and frames[0][1][:20] == frames[1][1][:20]  # one shape so far
    for fields, frame in frames:
        compact = compact_frame("pos", frame)
        assert compact is not None and describe("pos", compact) == describe("pos", frame)
        kept = decode_pos_body(PosFrame.parse(compact).body)
        assert kept["2"] == mask_pan(fields["2"]).replace("*", "0")
        assert kept["35"] == mask_track(fields["35"]).replace("*", "0")


@given(POS_MESSAGES)
def test_a_batch_reuses_a_body_compacted_before_only_where_the_result_is_the_same(fields: dict[str, str]) -> None:
    """The NAC traces a message as it came in and as it went on (the TPDU swapped): the second takes the first's
    compact body, and is exactly what compacting it alone gives (``None`` included)."""
    body = refcodec.encode_pos_body(fields)
    came_in = _pos_frame(body)
    went_on = Tpdu(dst="0000", src="0003").to_bytes() + PosHeader().to_bytes() + body
    memo = BatchMemo()
    assert memo.compact("pos", came_in) == compact_frame("pos", came_in)
    assert memo.compact("pos", went_on) == compact_frame("pos", went_on)
    assert memo.compact("hsm", b"0001M8U" + b"1" * 32) == b"0001M8"
