"""ASCII TLV: ``tag`` (2 characters) ‖ ``length`` (3 decimal digits) ‖ ``value`` (that many characters).

The layout of field 59 on the POS link (PROTOCOL.md §9), and of every message on acqsim's two small links
that carry no ISO 8583 body: the wallet link (:mod:`wire.walletlink`) and the cash-register link
(:mod:`wire.ecrlink`). Values are printable ASCII (``ans``), at most ``MAX_VALUE_LEN`` characters; tags are
two upper-case letters or digits. A tag appears at most once.

Errors are :class:`~wire.errors.MessageDecodeError` / :class:`~wire.errors.MessageEncodeError` naming the
field (or link) and the character offset where the problem starts, never a value (a value may be a payment
code or a card number).
"""

from __future__ import annotations

import string
from collections.abc import Iterable
from typing import Final

from wire.errors import MessageDecodeError, MessageEncodeError

TAG_LEN: Final = 2
LENGTH_DIGITS: Final = 3
MAX_VALUE_LEN: Final = 10**LENGTH_DIGITS - 1
TAG_CHARS: Final = frozenset(string.ascii_uppercase + string.digits)
#: ``ans``: printable ASCII, space included.
VALUE_CHARS: Final = frozenset(chr(c) for c in range(0x20, 0x7F))

TlvItems = tuple[tuple[str, str], ...]


def _bad_value_at(value: str) -> int | None:
    return next((i for i, char in enumerate(value) if char not in VALUE_CHARS), None)


def check_tag(tag: str, *, where: str) -> None:
    if len(tag) != TAG_LEN or not set(tag) <= TAG_CHARS:
        raise MessageEncodeError(f"TLV tag must be {TAG_LEN} upper-case letters or digits", field=where)


def encode_tlv(items: Iterable[tuple[str, str]], *, where: str) -> str:
    """``[("A3", "62…")]`` → ``"A301962…"``. Raises :class:`MessageEncodeError` (``field=where``)."""
    parts: list[str] = []
    seen: set[str] = set()
    for tag, value in items:
        check_tag(tag, where=where)
        if tag in seen:
            raise MessageEncodeError(f"TLV tag {tag} given twice", field=where)
        seen.add(tag)
        if len(value) > MAX_VALUE_LEN:
            raise MessageEncodeError(f"TLV {tag} value longer than {MAX_VALUE_LEN} characters", field=where)
        if (bad := _bad_value_at(value)) is not None:
            raise MessageEncodeError(f"TLV {tag} value has a non-printable character at {bad}", field=where)
        parts.append(f"{tag}{len(value):0{LENGTH_DIGITS}d}{value}")
    return "".join(parts)


def parse_tlv_text(text: str, *, where: str) -> TlvItems:
    """The (tag, value) pairs of ``text`` in order. Raises :class:`MessageDecodeError` with ``field=where``
    and the character offset of the first bad tag, length or value."""
    items: list[tuple[str, str]] = []
    seen: set[str] = set()
    at = 0
    while at < len(text):
        tag = text[at : at + TAG_LEN]
        if len(tag) < TAG_LEN or not set(tag) <= TAG_CHARS:
            raise MessageDecodeError("TLV tag is not 2 upper-case letters or digits", field=where, offset=at)
        if tag in seen:
            raise MessageDecodeError(f"TLV tag {tag} appears twice", field=where, offset=at)
        length_at = at + TAG_LEN
        length_text = text[length_at : length_at + LENGTH_DIGITS]
        if len(length_text) < LENGTH_DIGITS or not length_text.isascii() or not length_text.isdigit():
            raise MessageDecodeError(f"TLV {tag} length is not {LENGTH_DIGITS} digits", field=where, offset=length_at)
        value_at = length_at + LENGTH_DIGITS
        end = value_at + int(length_text)
        if end > len(text):
            raise MessageDecodeError(f"TLV {tag} value runs past the end", field=where, offset=length_at)
        value = text[value_at:end]
        if (bad := _bad_value_at(value)) is not None:
            raise MessageDecodeError(
                f"TLV {tag} value has a non-printable character", field=where, offset=value_at + bad
            )
        seen.add(tag)
        items.append((tag, value))
        at = end
    return tuple(items)


def parse_tlv_bytes(data: bytes, *, where: str) -> TlvItems:
    """As :func:`parse_tlv_text`, for a link frame's bytes (a non-ASCII byte is named by its offset)."""
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as exc:
        raise MessageDecodeError("TLV byte is not ASCII", field=where, offset=exc.start) from None
    return parse_tlv_text(text, where=where)
