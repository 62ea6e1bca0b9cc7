"""A POS-link request decoded once, at the edge, into a typed message (PROTOCOL.md §1, §3, §7, §9).

:meth:`PosMessage.decode` decodes the ISO 8583 body and parses its sub-fields: 60 (60.1 type, 60.2 batch, 60.3
network management code, 60.4 onwards kept as digits), 61 (the original's batch, STAN and date), 48 settlement
totals (in a 0500 only: elsewhere 48 carries other data), 55 (ICC data, BER-TLV) and 59 (QR data, ASCII TLV).
A body that does not decode raises :class:`~wire.errors.MessageDecodeError` (field and offset); a sub-field
that does not parse does not: the message keeps its error (field, offset of that field in the body, and which
sub-field) in :attr:`PosMessage.errors`, so a service can still answer the request (format error) — and the
parsed value is ``None``, as for an absent field. Nothing downstream slices a field again.

>>> from wire.codec import encode_pos_body
>>> message = PosMessage.decode(encode_pos_body({"t": "0200", "11": "000001", "60": "22000001"}))
>>> message.mti, message.field60.txn_type, message.field60.batch, message.errors
('0200', '22', '000001', {})
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Final, TypeVar

from wire.ascii_tlv import QR_FIELD, parse_ascii_tlv
from wire.codec import decode_pos_body, encode_pos_body, pos_field_offsets
from wire.constants import Mti
from wire.errors import MessageDecodeError
from wire.fields import Field60, Field61, SettlementTotals
from wire.tlv import ICC_FIELD, parse_tlv
from wire.trace import correlation_id

#: Sub-field parsers raise MessageDecodeError; ``int()`` and friends raise ValueError.
_SUB_FIELD_ERRORS: Final = (MessageDecodeError, ValueError)
T = TypeVar("T")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class PosMessage:
    """A decoded POS request: the raw fields (``"t"`` the MTI) and its sub-fields as parsed values."""

    body: bytes = dataclasses.field(repr=False)  # as received: the MAC is computed over it
    fields: Mapping[str, str] = dataclasses.field(repr=False)
    field60: Field60 | None = None
    field61: Field61 | None = None
    #: Field 48 of a settlement (0500): the terminal's totals.
    totals: SettlementTotals | None = None
    #: Field 55: the ICC data objects, (tag in upper-case hex, value), in order.
    icc: tuple[tuple[str, bytes], ...] | None = dataclasses.field(default=None, repr=False)
    #: Field 59: the QR data objects, (tag, value), in order.
    qr: tuple[tuple[str, str], ...] | None = dataclasses.field(default=None, repr=False)
    #: Sub-fields present but malformed, by field number.
    errors: Mapping[str, MessageDecodeError] = dataclasses.field(default_factory=dict)

    @property
    def mti(self) -> str:
        return self.fields["t"]

    @property
    def terminal_id(self) -> str:
        return self.fields.get("41", "?")

    @property
    def stan(self) -> str:
        return self.fields.get("11", "")

    @property
    def correlation_id(self) -> str | None:
        """What the request is traced under (:func:`wire.trace.correlation_id`); ``None`` without a STAN."""
        return correlation_id(self.terminal_id, self.stan) if self.stan else None

    def get(self, field: str, default: str = "") -> str:
        return self.fields.get(field, default)

    def __contains__(self, field: object) -> bool:
        return field in self.fields

    @classmethod
    def decode(cls, body: bytes) -> PosMessage:
        """Decode ``body``; raises :class:`MessageDecodeError` (field and offset) when the body itself is bad."""
        return cls.from_fields(decode_pos_body(body), body=body)

    @classmethod
    def from_fields(cls, fields: Mapping[str, str], *, body: bytes | None = None) -> PosMessage:
        """The message of already decoded ``fields`` (``body``: as received, else encoded from them)."""
        if body is None:
            body = encode_pos_body(fields)
        errors: dict[str, MessageDecodeError] = {}

        def parse(field: str, parser: Callable[[str], T]) -> T | None:
            if field not in fields:
                return None
            try:
                return parser(fields[field])
            except _SUB_FIELD_ERRORS as exc:
                errors[field] = _located(exc, field, body)
                return None

        return cls(
            body=body,
            fields=fields,
            field60=parse("60", Field60.parse),
            field61=parse("61", Field61.parse),
            totals=parse("48", SettlementTotals.parse) if fields.get("t") == Mti.SETTLEMENT else None,
            icc=parse(ICC_FIELD, lambda value: tuple(parse_tlv(bytes.fromhex(value)))),
            qr=parse(QR_FIELD, parse_ascii_tlv),
            errors=errors,
        )


def _located(exc: Exception, field: str, body: bytes) -> MessageDecodeError:
    """The sub-field error with the offset of its field in the body (the parser's own offset, if it gave one,
    counts from the start of the field's value and is kept in the reason)."""
    reason = exc.reason if isinstance(exc, MessageDecodeError) else "malformed value"
    inner = exc.offset if isinstance(exc, MessageDecodeError) else None
    if inner is not None:
        reason = f"{reason}, at byte {inner} of its value"
    return MessageDecodeError(reason, field=field, offset=pos_field_offsets(body).get(field))
