from __future__ import annotations

import pytest

from wire.errors import FramingError
from wire.framing import END_OF_STREAM, NEED_DATA, LengthPrefixFramer, frame


def test_one_frame_whole() -> None:
    framer = LengthPrefixFramer()
    framer.receive_data(frame(b"abc"))
    assert framer.next_frame() == b"abc"
    assert framer.next_frame() is NEED_DATA


def test_zero_length_is_an_error_with_offset() -> None:
    framer = LengthPrefixFramer()
    framer.receive_data(frame(b"x") + b"\x00\x00")
    assert framer.next_frame() == b"x"
    with pytest.raises(FramingError) as info:
        framer.next_frame()
    assert info.value.offset == 3


def test_eof_inside_frame_is_an_error_and_clean_eof_is_not() -> None:
    framer = LengthPrefixFramer()
    framer.receive_data(b"\x00\x05ab")
    framer.receive_data(b"")
    with pytest.raises(FramingError):
        framer.next_frame()
    clean = LengthPrefixFramer()
    clean.receive_data(b"")
    assert clean.next_frame() is END_OF_STREAM
