"""2-byte big-endian length-prefixed framing, sans-IO (h11 style).

Every acqsim link (POS, host, HSM) carries frames as ``LEN`` (2 bytes, unsigned big-endian, counting every
byte after it) followed by ``LEN`` bytes of payload.

    framer = LengthPrefixFramer()
    framer.receive_data(chunk)          # b"" means the peer closed
    while (frame := framer.next_frame()) is not NEED_DATA and frame is not END_OF_STREAM:
        handle(frame)

A zero length or a length above ``max_frame_len`` raises :class:`FramingError` with the stream offset of
the bad prefix; so does a stream that ends in the middle of a frame. After an error the framer stays
broken (every call raises again): the connection must be closed, since its byte stream can no longer
be trusted to be in step.
"""

from __future__ import annotations

import enum
from typing import Final

from wire.errors import FramingError

LENGTH_PREFIX_LEN: Final = 2
#: Largest payload a 2-byte prefix can describe.
ABSOLUTE_MAX_FRAME_LEN: Final = 0xFFFF
#: ``FramingError.kind`` values.
ZERO: Final = "zero"
OVERSIZED: Final = "oversized"
TRUNCATED: Final = "truncated"
EMPTY: Final = "empty"
#: Default limit: a CUP POS message is well under 1 KiB; 8 KiB leaves room for ICC data and uploads.
DEFAULT_MAX_FRAME_LEN: Final = 8192


class _Sentinel(enum.Enum):
    NEED_DATA = "NEED_DATA"
    END_OF_STREAM = "END_OF_STREAM"


#: ``next_frame`` result: no whole frame buffered yet; feed more bytes.
NEED_DATA: Final = _Sentinel.NEED_DATA
#: ``next_frame`` result: the peer closed cleanly between frames.
END_OF_STREAM: Final = _Sentinel.END_OF_STREAM


def frame(payload: bytes, *, max_frame_len: int = ABSOLUTE_MAX_FRAME_LEN) -> bytes:
    """Prefix ``payload`` with its 2-byte big-endian length."""
    if not payload:
        raise FramingError("refusing to send an empty frame", kind=EMPTY, offset=0)
    if len(payload) > max_frame_len:
        raise FramingError(
            f"payload of {len(payload)} bytes exceeds the {max_frame_len}-byte limit", kind=OVERSIZED, offset=0
        )
    return len(payload).to_bytes(LENGTH_PREFIX_LEN, "big") + payload


class LengthPrefixFramer:
    """Incremental reader of length-prefixed frames from a byte stream."""

    def __init__(self, max_frame_len: int = DEFAULT_MAX_FRAME_LEN) -> None:
        if not 0 < max_frame_len <= ABSOLUTE_MAX_FRAME_LEN:
            raise ValueError(f"max_frame_len must be 1..{ABSOLUTE_MAX_FRAME_LEN}, not {max_frame_len}")
        self.max_frame_len = max_frame_len
        self._buffer = bytearray()
        self._consumed = 0  # stream offset of self._buffer[0]
        self._eof = False
        self._error: FramingError | None = None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as a frame."""
        return len(self._buffer)

    @property
    def stream_offset(self) -> int:
        """Stream offset of the next unread byte."""
        return self._consumed

    def receive_data(self, data: bytes) -> None:
        """Feed bytes read from the peer; ``b""`` means the peer closed its side."""
        if self._eof and data:
            raise RuntimeError("receive_data() called after end of stream")
        if data:
            self._buffer += data
        else:
            self._eof = True

    def next_frame(self) -> bytes | _Sentinel:
        """Return the next whole payload, :data:`NEED_DATA` or :data:`END_OF_STREAM`."""
        if self._error is not None:
            raise self._error
        if len(self._buffer) < LENGTH_PREFIX_LEN:
            return self._at_short_buffer()
        length = int.from_bytes(self._buffer[:LENGTH_PREFIX_LEN], "big")
        if length == 0:
            return self._fail("zero-length frame", ZERO)
        if length > self.max_frame_len:
            return self._fail(f"frame length {length} exceeds the {self.max_frame_len}-byte limit", OVERSIZED)
        end = LENGTH_PREFIX_LEN + length
        if len(self._buffer) < end:
            return self._at_short_buffer()
        payload = bytes(self._buffer[LENGTH_PREFIX_LEN:end])
        del self._buffer[:end]
        self._consumed += end
        return payload

    def _at_short_buffer(self) -> _Sentinel:
        if not self._eof:
            return NEED_DATA
        if self._buffer:
            self._fail(f"stream ended inside a frame ({len(self._buffer)} bytes pending)", TRUNCATED)
        return END_OF_STREAM

    def _fail(self, reason: str, kind: str) -> _Sentinel:
        self._error = FramingError(reason, kind=kind, offset=self._consumed)
        raise self._error
