"""ASCII TLV as field 59 carries it for QR payments (PROTOCOL.md §9): tag 2 characters ‖ length 3 digits ‖
value, repeated. Errors name the field and the character offset in its value, never a value."""

from __future__ import annotations

from typing import Final

from wire.errors import MessageDecodeError, MessageEncodeError

QR_FIELD: Final = "59"
TAG_LEN: Final = 2
LENGTH_DIGITS: Final = 3
#: The largest value a 3-digit length can announce.
MAX_VALUE_LEN: Final = 10**LENGTH_DIGITS - 1


def parse_ascii_tlv(text: str, *, field: str = QR_FIELD) -> tuple[tuple[str, str], ...]:
    """The data objects of ``text`` in order, as (tag, value)."""
    items: list[tuple[str, str]] = []
    at = 0
    while at < len(text):
        head = text[at : at + TAG_LEN + LENGTH_DIGITS]
        if len(head) < TAG_LEN + LENGTH_DIGITS:
            raise MessageDecodeError("ASCII TLV ends inside a tag or its length", field=field, offset=at)
        tag, length = head[:TAG_LEN], head[TAG_LEN:]
        if not tag.isascii() or not tag.isalnum():
            raise MessageDecodeError("ASCII TLV tag must be 2 letters or digits", field=field, offset=at)
        if not length.isascii() or not length.isdigit():
            raise MessageDecodeError("ASCII TLV length must be 3 digits", field=field, offset=at + TAG_LEN)
        start = at + TAG_LEN + LENGTH_DIGITS
        end = start + int(length)
        if end > len(text):
            raise MessageDecodeError("ASCII TLV value runs past the end of the field", field=field, offset=at)
        items.append((tag, text[start:end]))
        at = end
    return tuple(items)


def encode_ascii_tlv(items: tuple[tuple[str, str], ...] | list[tuple[str, str]], *, field: str = QR_FIELD) -> str:
    parts = []
    for tag, value in items:
        if len(tag) != TAG_LEN or not tag.isascii() or not tag.isalnum():
            raise MessageEncodeError("ASCII TLV tag must be 2 letters or digits", field=field)
        if len(value) > MAX_VALUE_LEN:
            raise MessageEncodeError(f"ASCII TLV value longer than {MAX_VALUE_LEN}", field=field)
        parts.append(f"{tag}{len(value):0{LENGTH_DIGITS}d}{value}")
    return "".join(parts)
