"""A whole POS-link frame: TPDU ‖ header ‖ ISO 8583 body (PROTOCOL.md §1).

``PosFrame.parse`` takes the payload a :class:`wire.framing.LengthPrefixFramer` returned (everything after
the 2-byte length); offsets in its errors count from the start of that payload.
"""

from __future__ import annotations

import dataclasses

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
