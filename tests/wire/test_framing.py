"""Length-prefix framing: whole, byte by byte, split anywhere — the same frames; errors with offsets."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wire.errors import FramingError
from wire.framing import END_OF_STREAM, NEED_DATA, LengthPrefixFramer, frame

payloads = st.lists(st.binary(min_size=1, max_size=300), max_size=20)


def drain(framer: LengthPrefixFramer) -> list[bytes]:
    out = []
    while isinstance(item := framer.next_frame(), bytes):
        out.append(item)
    return out


@given(payloads)
def test_whole_stream(frames: list[bytes]) -> None:
    framer = LengthPrefixFramer()
    stream = b"".join(frame(p) for p in frames)
    if stream:  # b"" would mean end of stream
        framer.receive_data(stream)
    assert drain(framer) == frames
    assert framer.next_frame() is NEED_DATA


@given(payloads)
def test_byte_by_byte(frames: list[bytes]) -> None:
    framer = LengthPrefixFramer()
    got: list[bytes] = []
    for byte in b"".join(frame(p) for p in frames):
        framer.receive_data(bytes([byte]))
        got.extend(drain(framer))
    assert got == frames


@given(payloads, st.lists(st.integers(min_value=0, max_value=10_000), max_size=10), st.binary(max_size=1))
def test_split_at_random_points_with_trailing_bytes(frames: list[bytes], cuts: list[int], tail: bytes) -> None:
    stream = b"".join(frame(p) for p in frames) + tail
    points = sorted({c % (len(stream) + 1) for c in cuts})
    framer = LengthPrefixFramer()
    got: list[bytes] = []
    for start, end in zip([0, *points], [*points, len(stream)], strict=True):
        if end > start:
            framer.receive_data(stream[start:end])
        got.extend(drain(framer))
    assert got == frames
    assert framer.buffered == len(tail)  # a partial frame stays buffered


def test_zero_length_and_oversize_name_the_offset() -> None:
    framer = LengthPrefixFramer(max_frame_len=10)
    framer.receive_data(frame(b"abc") + b"\x00\x0b" + b"x" * 11)
    assert framer.next_frame() == b"abc"
    with pytest.raises(FramingError) as info:
        framer.next_frame()
    assert info.value.offset == 5 and "exceeds" in info.value.reason
    with pytest.raises(FramingError):
        framer.next_frame()  # stays broken: the stream is out of step
    zero = LengthPrefixFramer()
    zero.receive_data(b"\x00\x00")
    with pytest.raises(FramingError) as info:
        zero.next_frame()
    assert info.value.offset == 0


def test_end_of_stream_clean_and_inside_a_frame() -> None:
    clean = LengthPrefixFramer()
    clean.receive_data(frame(b"a"))
    clean.receive_data(b"")
    assert clean.next_frame() == b"a" and clean.next_frame() is END_OF_STREAM
    cut = LengthPrefixFramer()
    cut.receive_data(b"\x00\x05ab")
    cut.receive_data(b"")
    with pytest.raises(FramingError) as info:
        cut.next_frame()
    assert info.value.offset == 0 and "ended inside" in info.value.reason


def test_frame_refuses_empty_and_oversize_payloads() -> None:
    assert frame(b"\x01\x02") == b"\x00\x02\x01\x02"
    with pytest.raises(FramingError):
        frame(b"")
    with pytest.raises(FramingError):
        frame(b"x" * 11, max_frame_len=10)
    with pytest.raises(ValueError, match="max_frame_len"):
        LengthPrefixFramer(max_frame_len=0x10000)


def test_limit_is_inclusive_and_offsets_advance() -> None:
    framer = LengthPrefixFramer(max_frame_len=3)
    framer.receive_data(frame(b"abc") + frame(b"de"))
    assert drain(framer) == [b"abc", b"de"]
    assert framer.stream_offset == 9 and framer.buffered == 0
    framer.receive_data(b"")
    assert framer.next_frame() is END_OF_STREAM
    with pytest.raises(RuntimeError):
        framer.receive_data(b"more")


def test_framing_errors_say_which_kind() -> None:
    from wire.framing import OVERSIZED, TRUNCATED, ZERO

    for stream, kind in ((b"\x00\x00", ZERO), (b"\x00\x0bxxxxxxxxxxx", OVERSIZED)):
        framer = LengthPrefixFramer(max_frame_len=10)
        framer.receive_data(stream)
        with pytest.raises(FramingError) as info:
            framer.next_frame()
        assert info.value.kind == kind
    cut = LengthPrefixFramer()
    cut.receive_data(b"\x00\x05ab")
    cut.receive_data(b"")
    with pytest.raises(FramingError) as info:
        cut.next_frame()
    assert info.value.kind == TRUNCATED
