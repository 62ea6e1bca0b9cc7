"""BER-TLV as EMV uses it in field 55 (ICC data): read a value into its data objects, and mask the card data
inside (PROTOCOL.md §7).

Tags are 1 or more bytes (a first byte ending in ``1F`` continues while a byte has its high bit set); lengths
are one byte below ``0x80``, else ``0x81 nn`` or ``0x82 nnnn``. Errors name field 55 and the byte offset in
the field's value, never a value.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from wire.errors import MessageDecodeError, MessageEncodeError
from wire.masking import MASK_CHAR, mask_pan, mask_track

ICC_FIELD: Final = "55"
#: Data objects that carry the card number or track data: shown masked (first 6 / last 4).
CARD_NUMBER_TAGS: Final = frozenset({"5A"})
TRACK_TAGS: Final = frozenset({"57", "9F6B"})
#: Data objects never shown without ``unmask``: cardholder name, track 1 data.
HIDDEN_TAGS: Final = frozenset({"5F20", "56", "9F1F", "9F20"})


#: The largest value :func:`encode_tlv` writes (``82 nnnn``).
MAX_VALUE_LEN: Final = 0xFFFF
#: What each EMV / PBOC data object is, for dissections (EMV 4.3 Book 3 annex A, PBOC 3.0).
TAG_NAMES: Final[dict[str, str]] = {
    "4F": "AID (card)",
    "50": "application label",
    "57": "track 2 equivalent",
    "5A": "PAN",
    "5F20": "cardholder name",
    "5F24": "expiry",
    "5F2A": "currency",
    "5F34": "PAN sequence number",
    "71": "issuer script (before 2nd GENERATE AC)",
    "72": "issuer script (after 2nd GENERATE AC)",
    "82": "AIP",
    "84": "AID",
    "86": "issuer script command",
    "8A": "authorisation response code",
    "91": "issuer authentication data (ARPC ‖ ARC)",
    "95": "TVR",
    "9A": "date",
    "9C": "transaction type",
    "9F02": "amount",
    "9F03": "other amount",
    "9F09": "application version",
    "9F10": "issuer application data",
    "9F18": "issuer script id",
    "9F1A": "terminal country",
    "9F1E": "IFD serial number",
    "9F26": "application cryptogram",
    "9F27": "cryptogram information data",
    "9F33": "terminal capabilities",
    "9F34": "CVM results",
    "9F35": "terminal type",
    "9F36": "ATC",
    "9F37": "unpredictable number",
    "9F41": "transaction sequence counter",
    "9F63": "card product information",
    "9F6B": "track 2 data",
    "DF31": "issuer script results",
}


def encode_tlv(items: Iterable[tuple[str, bytes]], *, field: str = ICC_FIELD) -> bytes:
    """BER-TLV of (tag in hex, value) pairs, lengths in the shortest form."""
    out = bytearray()
    for tag, value in items:
        try:
            tag_bytes = bytes.fromhex(tag)
        except ValueError:
            raise MessageEncodeError(f"tag {tag!r} is not hex", field=field, offset=len(out)) from None
        if not tag_bytes or len(value) > MAX_VALUE_LEN:
            raise MessageEncodeError(f"tag {tag}: empty tag or value too long", field=field, offset=len(out))
        length = len(value)
        if length < 0x80:
            size = bytes([length])
        elif length <= 0xFF:
            size = bytes([0x81, length])
        else:
            size = b"\x82" + length.to_bytes(2, "big")
        out += tag_bytes + size + value
    return bytes(out)


def parse_tlv(data: bytes, *, field: str = ICC_FIELD) -> list[tuple[str, bytes]]:
    """The data objects of ``data`` in order, as (tag in upper-case hex, value)."""
    return [(tag, value) for tag, value, _ in parse_tlv_at(data, field=field)]


def parse_tlv_at(data: bytes, *, field: str = ICC_FIELD) -> list[tuple[str, bytes, int]]:
    """As :func:`parse_tlv`, each data object with the offset of its tag."""
    items: list[tuple[str, bytes, int]] = []
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
        items.append((data[start:tag_end].hex().upper(), data[at : at + length], start))
        at += length
    return items


def _card_digits(value: bytes) -> str:
    """BCD card data as digits: pad nibble F dropped, separator nibble D shown as ``=``."""
    return value.hex().upper().rstrip("F").replace("D", "=")


def shown_tlv(data: bytes, *, unmask: bool = False) -> str:
    """``9F26 (application cryptogram)=1A2B…; 5A (PAN)=620000******0003; …``: every data object with its
    name, card data masked unless ``unmask``."""
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
        name = TAG_NAMES.get(tag)
        parts.append(f"{tag} ({name})={shown}" if name else f"{tag}={shown}")
    return "; ".join(parts)
