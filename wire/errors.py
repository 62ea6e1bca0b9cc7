"""The wire exception hierarchy.

Every error raised by ``wire`` is a :class:`WireError`, and carries *where* it happened
(``offset`` into the bytes being read, ``field`` of the ISO message) but never the value that was
being read: a value may be a PAN, a track or a PIN block, and errors end up in logs.

    AcqsimError
    └── WireError               (offset, field)
        ├── FramingError        length prefix: zero, over the limit, or truncated at end of stream
        ├── TpduError           TPDU: too short or wrong ID
        ├── HeaderError         6-byte POS header: too short or not BCD
        ├── MessageDecodeError  ISO 8583 body could not be decoded
        └── MessageEncodeError  ISO 8583 body could not be encoded
"""

from __future__ import annotations


class AcqsimError(Exception):
    """Base of every error acqsim raises on purpose."""


class WireError(AcqsimError):
    """Something on the wire is not as the contract says.

    ``offset`` is the byte offset (into the frame or stream being read) where the problem starts;
    ``field`` is the ISO 8583 field (``"t"`` MTI, ``"p"`` bitmap, ``"2"``..``"128"``) when known.
    """

    def __init__(self, reason: str, *, offset: int | None = None, field: str | None = None) -> None:
        self.reason = reason
        self.offset = offset
        self.field = field
        where = []
        if field is not None:
            where.append(f"field {field}")
        if offset is not None:
            where.append(f"offset {offset}")
        super().__init__(f"{reason} ({', '.join(where)})" if where else reason)


class FramingError(WireError):
    """The 2-byte length prefix is zero, over the limit, or the stream ended inside a frame.

    ``kind`` says which: ``"zero"``, ``"oversized"``, ``"truncated"`` (``"empty"`` when refusing to send;
    ``"undecodable"`` when a peer's frame does not decode and the stream cannot be trusted).
    """

    def __init__(self, reason: str, *, kind: str, offset: int | None = None, field: str | None = None) -> None:
        super().__init__(reason, offset=offset, field=field)
        self.kind = kind


class TpduError(WireError):
    """The 5-byte TPDU is too short or does not start with the TPDU ID 0x60."""


class HeaderError(WireError):
    """The 6-byte POS message header is too short or is not BCD."""


class MessageDecodeError(WireError):
    """An ISO 8583 body could not be decoded against its spec."""


class MessageEncodeError(WireError):
    """An ISO 8583 message could not be encoded against its spec."""
