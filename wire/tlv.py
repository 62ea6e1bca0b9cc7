"""BER-TLV as EMV uses it in field 55 (ICC data): read a value into its data objects, and mask the card data
inside (PROTOCOL.md §7).

Tags are 1 or more bytes (a first byte ending in ``1F`` continues while a byte has its high bit set); lengths
are one byte below ``0x80``, else ``0x81 nn`` or ``0x82 nnnn``. Errors name field 55 and the byte offset in
the field's value, never a value.
"""

from __future__ import annotations

from typing import Final

from wire.errors import MessageDecodeError
from wire.masking import MASK_CHAR, mask_pan, mask_track

ICC_FIELD: Final = "55"
#: Data objects that carry the card number or track data: shown masked (first 6 / last 4).
CARD_NUMBER_TAGS: Final = frozenset({"5A"})
TRACK_TAGS: Final = frozenset({"57", "9F6B"})
#: Data objects never shown without ``unmask``: cardholder name, track 1 data.
HIDDEN_TAGS: Final = frozenset({"5F20", "56", "9F1F", "9F20"})


def parse_tlv(data: bytes, *, field: str = ICC_FIELD) -> list[tuple[str, bytes]]:
    """The data objects of ``data`` in order, as (tag in upper-case hex, value)."""
    items: list[tuple[str, bytes]] = []
    at = 0
    while at < len(data):
        start = at
        tag_end = at + 1
        if data[at] & 0x1F == 0x1F:  # multi-byte tag
            while tag_end < len(data) and data[tag_end] & 0x80:
                tag_end += 1
            tag_end += 1
        if tag_end >= len(data):
            raise MessageDecodeError("TLV ends inside a tag or before its length", field=field, offset=start)
        length = data[tag_end]
        at = tag_end + 1
        if length & 0x80:
            size = length & 0x7F
            if size not in (1, 2) or at + size > len(data):
                raise MessageDecodeError("TLV length is malformed", field=field, offset=tag_end)
            length = int.from_bytes(data[at : at + size], "big")
            at += size
        if at + length > len(data):
            raise MessageDecodeError("TLV value runs past the end of the field", field=field, offset=tag_end)
        items.append((data[start:tag_end].hex().upper(), data[at : at + length]))
        at += length
    return items


def _card_digits(value: bytes) -> str:
    """BCD card data as digits: pad nibble F dropped, separator nibble D shown as ``=``."""
    return value.hex().upper().rstrip("F").replace("D", "=")


def shown_tlv(data: bytes, *, unmask: bool = False) -> str:
    """``9F26=1A2B…; 5A=620000******0003; 57=620000******0003=****…``: every data object, card data masked
    unless ``unmask``."""
    parts = []
    for tag, value in parse_tlv(data):
        if unmask or tag not in CARD_NUMBER_TAGS | TRACK_TAGS | HIDDEN_TAGS:
            shown = value.hex().upper()
        elif tag in CARD_NUMBER_TAGS:
            shown = mask_pan(_card_digits(value))
        elif tag in TRACK_TAGS:
            shown = mask_track(_card_digits(value))
        else:
            shown = MASK_CHAR * 4
        parts.append(f"{tag}={shown}")
    return "; ".join(parts)
