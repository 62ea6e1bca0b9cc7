"""ASCII TLV: ``tag`` (2 characters) ‖ ``length`` (3 decimal digits) ‖ ``value`` (that many characters).

The layout of field 59 on the POS link (QR payments, PROTOCOL.md §9), and of every message on acqsim's small
links that carry no ISO 8583 body (:mod:`wire.tlvlink`: the wallet, ECR and merchant links). Values are
printable ASCII (``ans``), at most ``MAX_VALUE_LEN`` characters; tags are two ASCII letters or digits. A tag
appears at most once.

Errors are :class:`~wire.errors.MessageDecodeError` / :class:`~wire.errors.MessageEncodeError` naming the
field (or link) and the character offset where the problem starts, never a value (a value may be a payment
code).
"""

from __future__ import annotations

import string
from collections.abc import Iterable
from typing import Final

from wire.errors import MessageDecodeError, MessageEncodeError

QR_FIELD: Final = "59"
TAG_LEN: Final = 2
LENGTH_DIGITS: Final = 3
#: The largest value a 3-digit length can announce.
MAX_VALUE_LEN: Final = 10**LENGTH_DIGITS - 1
TAG_CHARS: Final = frozenset(string.ascii_letters + string.digits)
#: ``ans``: printable ASCII, space included.
VALUE_CHARS: Final = frozenset(chr(c) for c in range(0x20, 0x7F))

TlvItems = tuple[tuple[str, str], ...]


def _bad_value_at(value: str) -> int | None:
    return next((i for i, char in enumerate(value) if char not in VALUE_CHARS), None)


def _good_tag(tag: str) -> bool:
    return len(tag) == TAG_LEN and set(tag) <= TAG_CHARS


def encode_ascii_tlv(items: Iterable[tuple[str, str]], *, field: str = QR_FIELD) -> str:
    """``[("A3", "62…")]`` → ``"A301962…"``. Raises :class:`MessageEncodeError` naming ``field``."""
    parts: list[str] = []
    seen: set[str] = set()
    for tag, value in items:
        if not _good_tag(tag):
            raise MessageEncodeError(f"ASCII TLV tag must be {TAG_LEN} letters or digits", field=field)
        if tag in seen:
            raise MessageEncodeError(f"ASCII TLV tag {tag} given twice", field=field)
        seen.add(tag)
        if len(value) > MAX_VALUE_LEN:
            raise MessageEncodeError(f"ASCII TLV {tag} value longer than {MAX_VALUE_LEN}", field=field)
        if (bad := _bad_value_at(value)) is not None:
            raise MessageEncodeError(f"ASCII TLV {tag} value has a non-printable character at {bad}", field=field)
        parts.append(f"{tag}{len(value):0{LENGTH_DIGITS}d}{value}")
    return "".join(parts)


def parse_ascii_tlv(text: str, *, field: str = QR_FIELD) -> TlvItems:
    """The (tag, value) pairs of ``text`` in order. Raises :class:`MessageDecodeError` naming ``field`` and a
    character offset: of the data object that is cut short or runs past the end, of a bad tag or length, of
    a bad character in a value."""
    items: list[tuple[str, str]] = []
    seen: set[str] = set()
    at = 0
    while at < len(text):
        if len(text) - at < TAG_LEN + LENGTH_DIGITS:
            raise MessageDecodeError("ASCII TLV ends inside a tag or its length", field=field, offset=at)
        tag = text[at : at + TAG_LEN]
        if not _good_tag(tag):
            raise MessageDecodeError("ASCII TLV tag must be 2 letters or digits", field=field, offset=at)
        if tag in seen:
            raise MessageDecodeError(f"ASCII TLV tag {tag} appears twice", field=field, offset=at)
        length_at = at + TAG_LEN
        length = text[length_at : length_at + LENGTH_DIGITS]
        if not length.isascii() or not length.isdigit():
            raise MessageDecodeError("ASCII TLV length must be 3 digits", field=field, offset=length_at)
        value_at = length_at + LENGTH_DIGITS
        end = value_at + int(length)
        if end > len(text):
            raise MessageDecodeError("ASCII TLV value runs past the end of the field", field=field, offset=at)
        value = text[value_at:end]
        if (bad := _bad_value_at(value)) is not None:
            raise MessageDecodeError(
                "ASCII TLV value has a non-printable character", field=field, offset=value_at + bad
            )
        seen.add(tag)
        items.append((tag, value))
        at = end
    return tuple(items)


def parse_ascii_tlv_bytes(data: bytes, *, field: str) -> TlvItems:
    """As :func:`parse_ascii_tlv`, for a link frame's bytes (a non-ASCII byte is named by its offset)."""
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as exc:
        raise MessageDecodeError("ASCII TLV byte is not ASCII", field=field, offset=exc.start) from None
    return parse_ascii_tlv(text, field=field)
