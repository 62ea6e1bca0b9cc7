"""The reference ISO 8583 body codec for both links: a thin wrapper around pyiso8583.

:mod:`wire.codec` (what everything imports) answers well-formed messages with the specialised codec of
:mod:`wire.fastcodec` and hands everything else here, so every error comes from this module; the hypothesis
tests of ``tests/wire/test_fastcodec.py`` compare the two. Use this module directly only to compare.

Messages are plain dicts of strings keyed like pyiso8583's (``"t"`` MTI, ``"2"``..``"128"``), without the
bitmap keys (``"p"``, ``"1"``): the codec writes bitmaps itself. Binary fields (52, 55, 62, 64) are upper-case
hex; BCD fields are digit strings; tracks (35, 36) use ``=`` as separator (nibble ``D`` on the wire).

What the wrapper adds to pyiso8583:
- the caller's dict is never mutated (pyiso8583's ``encode`` writes bitmaps into the dict it is given);
- a bitmap bit for a field outside the POS contract is a :class:`MessageDecodeError` naming that field;
- every pyiso8583 error is translated into :class:`MessageDecodeError` / :class:`MessageEncodeError` carrying
  the field and offset only — pyiso8583's own error objects hold the partly decoded message (PANs, PIN
  blocks), so they are dropped (``from None``) and never reach a log.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

import iso8583

from wire.errors import MessageDecodeError, MessageEncodeError
from wire.specs import (
    HOST_SPEC,
    POS_BCD_FIELDS,
    POS_BITMAP_OFFSET,
    POS_SPEC,
    POS_TRACK_FIELDS,
    SpecDict,
    pos_track_refused,
)

Fields = dict[str, str]

_BITMAP_KEYS: Final = ("p", "1")
_POS_FIELD_NUMBERS: Final = frozenset(int(k) for k in POS_SPEC if k.isdigit())
_DIGITS = re.compile(r"[0-9]*")
_TRACK = re.compile(r"[0-9A-CEF=]*")  # hex digits only where 53 says encrypted: pos_track_refused


_SPECIAL_ORDER: Final = {"h": -2, "t": -1, "p": 0}
#: The primary-bitmap bits of the fields the POS contract defines (bit 1 = field 1 = the top bit).
_POS_BITMAP_ALLOWED: Final = sum(1 << (64 - n) for n in _POS_FIELD_NUMBERS if n <= 64)


def _field_order(key: str) -> int:
    order = _SPECIAL_ORDER.get(key)
    if order is not None:
        return order
    return int(key) if key.isdigit() else 10_000


def _to_wire_track(value: str) -> str:
    return value.replace("=", "D")


def _from_wire_track(value: str) -> str:
    return value.upper().replace("D", "=")


def _encode(fields: Mapping[str, str], spec: SpecDict, link: str) -> bytes:
    doc: dict[str, str] = {}
    for key, value in fields.items():
        if key in _BITMAP_KEYS:
            continue
        if key not in spec or key == "h":
            raise MessageEncodeError(f"field is not part of the {link} spec", field=key)
        if not isinstance(value, str):
            raise MessageEncodeError(f"field value must be str, not {type(value).__name__}", field=key)
        if link == "POS":
            _check_pos_digits(key, value, MessageEncodeError)
        doc[key] = _to_wire_track(value) if link == "POS" and key in POS_TRACK_FIELDS else value
    if "t" not in doc:
        raise MessageEncodeError("message has no MTI", field="t")
    if link == "POS" and (refused := pos_track_refused(fields)) is not None:
        raise MessageEncodeError(_TRACK_NOT_ENCRYPTED, field=refused)
    try:
        raw, _ = iso8583.encode(doc, spec)  # ``doc`` is our private copy: pyiso8583 may write into it
    except iso8583.EncodeError as exc:
        raise MessageEncodeError(exc.msg, field=exc.field) from None
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise MessageEncodeError(f"cannot encode ({type(exc).__name__})") from None
    return bytes(raw)


def _check_pos_digits(key: str, value: str, error: type[MessageDecodeError | MessageEncodeError]) -> None:
    """BCD fields hold decimal digits only (tracks also ``=``): anything else is not BCD."""
    if key == "t" or key in POS_BCD_FIELDS:
        if not _DIGITS.fullmatch(value):
            raise error("BCD field holds a non-decimal digit", field=key)
    elif key in POS_TRACK_FIELDS and not _TRACK.fullmatch(value):
        raise error("track holds something other than digits, separators and encrypted digits", field=key)


_TRACK_NOT_ENCRYPTED: Final = "track holds encrypted (hex) digits but field 53 does not say the tracks are encrypted"


def _decode_raw(data: bytes, spec: SpecDict) -> tuple[dict[str, str], dict[str, dict[str, bytes]]]:
    try:
        decoded, encoded = iso8583.decode(data, spec)
    except iso8583.DecodeError as exc:
        raise MessageDecodeError(exc.msg, field=exc.field, offset=exc.pos) from None
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise MessageDecodeError(f"cannot decode ({type(exc).__name__})") from None
    return decoded, encoded


def field_offsets(encoded: Mapping[str, Mapping[str, bytes]]) -> dict[str, int]:
    """Offset of each field (its length prefix, if any) in the body, from pyiso8583's ``encoded`` parts."""
    offsets: dict[str, int] = {}
    position = 0
    for key in sorted(encoded, key=_field_order):
        offsets[key] = position
        position += len(encoded[key]["len"]) + len(encoded[key]["data"])
    return offsets


def pos_field_offsets(body: bytes) -> dict[str, int]:
    """Where each field of a decodable POS body starts (its length prefix, if any)."""
    _, encoded = _decode_raw(body, POS_SPEC)
    return field_offsets(encoded)


def _decode(data: bytes, spec: SpecDict) -> Fields:
    decoded, _ = _decode_raw(data, spec)
    return {k: v for k, v in decoded.items() if k not in _BITMAP_KEYS}  # pyiso8583 decodes in field order


def _check_pos_bitmap(body: bytes) -> None:
    """Refuse bitmap bits for fields the POS contract does not define, before pyiso8583 looks them up."""
    bitmap = body[POS_BITMAP_OFFSET : POS_BITMAP_OFFSET + 8]
    if len(bitmap) < 8:
        return  # pyiso8583 reports the short bitmap with its offset
    bits = int.from_bytes(bitmap, "big")
    if not bits & ~_POS_BITMAP_ALLOWED:
        return
    for number in range(1, 65):  # name the first field that is not allowed
        if bits & (1 << (64 - number)) and number not in _POS_FIELD_NUMBERS:
            what = "secondary bitmap" if number == 1 else "field"
            raise MessageDecodeError(
                f"bitmap announces a {what} outside the CUP POS contract", field=str(number), offset=POS_BITMAP_OFFSET
            )


def encode_pos_body(fields: Mapping[str, str]) -> bytes:
    """Encode a POS-link body (MTI, bitmap, fields) per PROTOCOL.md §1."""
    return _encode(fields, POS_SPEC, "POS")


def decode_pos_body(body: bytes) -> Fields:
    """Decode a POS-link body; raises :class:`MessageDecodeError` with field and offset."""
    _check_pos_bitmap(body)
    decoded, encoded = _decode_raw(body, POS_SPEC)
    fields = {k: v for k, v in decoded.items() if k not in _BITMAP_KEYS}  # pyiso8583 decodes in field order
    for key in POS_TRACK_FIELDS & fields.keys():
        fields[key] = _from_wire_track(fields[key])
    for key, value in fields.items():
        try:
            _check_pos_digits(key, value, MessageDecodeError)
        except MessageDecodeError as exc:
            raise MessageDecodeError(exc.reason, field=key, offset=field_offsets(encoded)[key]) from None
    if (refused := pos_track_refused(fields)) is not None:
        raise MessageDecodeError(_TRACK_NOT_ENCRYPTED, field=refused, offset=field_offsets(encoded)[refused])
    return fields


def encode_host(fields: Mapping[str, str]) -> bytes:
    """Encode a host-link message (ISO 8583:1987 ASCII) per PROTOCOL.md §2."""
    return _encode(fields, HOST_SPEC, "host")


def decode_host(data: bytes) -> Fields:
    """Decode a host-link message; raises :class:`MessageDecodeError` with field and offset."""
    return _decode(data, HOST_SPEC)


def decode_host_partial(data: bytes) -> tuple[Fields, MessageDecodeError | None]:
    """Decode a host-link message as far as it goes: the fields before the first bad one, and the error (with
    field and offset), or every field and ``None``. Lets a server answer a bad message when what identifies it
    (MTI, and fields before the bad one) could be read."""
    try:
        return decode_host(data), None
    except MessageDecodeError as error:
        try:
            iso8583.decode(data, HOST_SPEC)
        except iso8583.DecodeError as exc:
            partial = {k: v for k, v in exc.doc_dec.items() if k not in _BITMAP_KEYS and k != exc.field}
            return partial, error
        except (ValueError, TypeError, KeyError, IndexError):
            pass
        return {}, error
