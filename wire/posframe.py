"""A whole POS-link frame: TPDU ‖ header ‖ ISO 8583 body (PROTOCOL.md §1).

``PosFrame.parse`` takes the payload a :class:`wire.framing.LengthPrefixFramer` returned (everything after
the 2-byte length); offsets in its errors count from the start of that payload.
"""

from __future__ import annotations

import dataclasses

from wire.codec import decode_pos_body
from wire.errors import MessageDecodeError
from wire.framing import frame
from wire.header import HEADER_LEN, PosHeader
from wire.tpdu import TPDU_LEN, Tpdu

#: Offset of the ISO body inside a POS payload.
BODY_OFFSET = TPDU_LEN + HEADER_LEN


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class PosFrame:
    tpdu: Tpdu
    header: PosHeader
    body: bytes

    @classmethod
    def parse(cls, payload: bytes) -> PosFrame:
        tpdu = Tpdu.parse(payload)
        header = PosHeader.parse(payload, offset=TPDU_LEN)
        body = payload[BODY_OFFSET:]
        if not body:
            raise MessageDecodeError("frame has no ISO 8583 body", field="t", offset=BODY_OFFSET)
        return cls(tpdu=tpdu, header=header, body=body)

    def to_bytes(self) -> bytes:
        """The payload, without the length prefix."""
        return self.tpdu.to_bytes() + self.header.to_bytes() + self.body

    def to_wire(self) -> bytes:
        """The payload with its 2-byte length prefix, ready to send."""
        return frame(self.to_bytes())

    def answer(self, body: bytes, *, header: PosHeader | None = None) -> PosFrame:
        """The frame that answers this one: TPDU swapped, same header unless another is given."""
        return PosFrame(tpdu=self.tpdu.swapped(), header=header or self.header, body=body)


#: The first two body bytes of a sign-on (MTI 0800, BCD): where a terminal's session starts afresh.
SIGN_ON_MTI_BCD = bytes.fromhex("0800")


def terminal_id_of(payload: bytes) -> str | None:
    """Field 41 (terminal id) of a POS payload, or ``None`` when the body cannot be read or has no 41.

    For a NAC that keeps each terminal on one front-end of a pool; the rest of the body is not looked at
    further. Costs one body decode (the compiled codec, a few µs)."""
    try:
        fields = decode_pos_body(payload[BODY_OFFSET:])
    except (MessageDecodeError, ValueError):
        return None
    return fields.get("41")


def is_sign_on(payload: bytes) -> bool:
    """Whether a POS payload is a sign-on (MTI 0800), read from the MTI's two BCD bytes alone."""
    return payload[BODY_OFFSET : BODY_OFFSET + 2] == SIGN_ON_MTI_BCD
