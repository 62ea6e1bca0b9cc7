"""Each ISO 8583 field's encode and decode, written once as Python source from its pyiso8583 spec entry: the
field rules of :mod:`wire.fastcodec`, which compiles them into a function per field and, unrolled, into a
function per message shape (so a message is decoded or encoded without a call per field).

A decode snippet reads ``body`` at offset ``o`` and leaves the field's value in ``v`` and ``o`` after it; an
encode snippet turns the value ``v`` (a ``str``) into its bytes, length prefix included, in ``x``. Both may
use the scratch names ``e``, ``n`` and ``t``, and the names of :data:`SNIPPET_GLOBALS`; every spec value is
written into the source as a literal (``repr``), never anything a message carries. Anything a snippet is not
certain of raises :class:`Unsupported`: the caller's pyiso8583 reference path then decides (and names any
error), so these rules only ever *accept* what the reference accepts the same way.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final


class Unsupported(Exception):
    """The fast path declines this input; the pyiso8583 reference path decides (and names any error)."""


#: A track in a dict (``=`` for nibble D) and on the wire: hex digits are a TDK-encrypted track's, allowed or not
#: by the whole message's ``message_rule`` (field 53).
_TRACK_VALUE: Final = re.compile(r"[0-9A-CEF=]*")
_TRACK_WIRE: Final = re.compile(r"[0-9A-F]*")
TEXT_ENCODING: Final = "ascii"

#: What the snippets may name besides their own scratch names.
SNIPPET_GLOBALS: Final[dict[str, Any]] = {
    "Unsupported": Unsupported,
    "a2b_hex": binascii.a2b_hex,
    "TRACK_VALUE": _TRACK_VALUE,
    "TRACK_WIRE": _TRACK_WIRE,
}


@dataclass(frozen=True, slots=True)
class FieldSource:
    """One field's rules as source: ``decode`` and ``encode`` are lists of statements (see the module)."""

    key: str
    decode: tuple[str, ...]
    encode: tuple[str, ...]


def _refuse(key: str) -> str:
    return f"raise Unsupported({key!r})"


def _prefix_digits(key: str, field_spec: Mapping[str, Any]) -> int:
    """The digits of a variable field's length prefix (two a byte in BCD, one in ASCII); a :class:`ValueError` for
    an encoding these rules do not read, or a maximum the prefix cannot hold."""
    len_type: int = field_spec["len_type"]
    if field_spec["len_enc"] == "bcd":
        digits = 2 * len_type
    elif field_spec["len_enc"] == TEXT_ENCODING:
        digits = len_type
    else:
        raise ValueError(f"field {key}: length encoding {field_spec['len_enc']!r} is not supported")
    if field_spec["max_len"] >= 10**digits:
        raise ValueError(f"field {key}: a maximum of {field_spec['max_len']} does not fit {digits} length digits")
    return digits


def _read_length(key: str, field_spec: Mapping[str, Any]) -> list[str]:
    """Statements leaving the announced count in ``n`` and ``o`` at the data; declining anything not plainly
    decimal or beyond the field's maximum."""
    len_type: int = field_spec["len_type"]
    max_len: int = field_spec["max_len"]
    if len_type == 0:
        return [f"n = {max_len}"]
    digits = _prefix_digits(key, field_spec)
    # the ASCII prefix stays bytes: bytes.isdigit is ASCII 0-9 only, so int() reads exactly what the reference does
    as_text = ".hex()" if field_spec["len_enc"] == "bcd" else ""
    return [
        f"t = body[o:o + {len_type}]{as_text}",
        f"if len(t) != {digits} or not t.isdigit(): {_refuse(key)}",
        "n = int(t)",
        f"if n > {max_len}: {_refuse(key)}",
        f"o += {len_type}",
    ]


def _prefixed(key: str, field_spec: Mapping[str, Any]) -> str:
    """An expression: the length prefix of count ``n`` followed by the data ``x``."""
    if field_spec["len_type"] == 0:
        return "x"
    digits = _prefix_digits(key, field_spec)
    if field_spec["len_enc"] == "bcd":
        return f'bytes.fromhex(f"{{n:0{digits}d}}") + x'
    return f'f"{{n:0{digits}d}}".encode() + x'


def _wrong_count(field_spec: Mapping[str, Any]) -> str:
    """A condition: ``n`` is not a count the field can carry."""
    max_len: int = field_spec["max_len"]
    return f"n != {max_len}" if field_spec["len_type"] == 0 else f"n > {max_len}"


def _fixed_digits(key: str, digits: int, left_pad: str, right_pad: str) -> FieldSource:
    """The commonest POS field (n6, n12, n4 …): no prefix, digits only (so ``hex()``'s case does not matter)."""
    size = (digits + 1) >> 1
    check = f"if len(v) != {digits} or not v.isdigit() or not v.isascii(): {_refuse(key)}"
    decode: tuple[str, ...]
    if not digits & 1:
        decode = (
            f"e = o + {size}",
            "v = body[o:e].hex()",
            f"if len(v) != {digits} or not v.isdigit(): {_refuse(key)}",
            "o = e",
        )
        return FieldSource(key, decode, (check, "x = a2b_hex(v)"))
    # an odd count: pyiso8583 pads with the left pad if the spec has one, else the right pad, and strips the same
    pad = left_pad or right_pad
    if not pad or not pad.isdigit():
        raise ValueError(f"field {key}: an odd digit count needs a digit pad")
    decode = (
        f"e = o + {size}",
        "v = body[o:e].hex()",
        f"if len(v) != {digits + 1} or not v.isdigit(): {_refuse(key)}",
        f"if v[0] != {left_pad!r}: {_refuse(key)}" if left_pad else f"if v[-1] != {right_pad!r}: {_refuse(key)}",
        "v = v[1:]" if left_pad else "v = v[:-1]",
        "o = e",
    )
    padded = f"{left_pad!r} + v" if left_pad else f"v + {right_pad!r}"
    return FieldSource(key, decode, (check, f"x = a2b_hex({padded})"))


def _character_checks(key: str, *, track: bool, digits: bool, on_wire: bool) -> list[str]:
    """Statements checking the characters of ``v`` as read off the wire or as given in a dict: a track's (and
    turning its separator between nibble ``D`` and ``=``), or decimal digits; nothing for other fields."""
    if track:
        pattern, swap = ("TRACK_WIRE", '"D", "="') if on_wire else ("TRACK_VALUE", '"=", "D"')
        return [f"if not {pattern}.fullmatch(v): {_refuse(key)}", f"v = v.replace({swap})"]
    if digits:
        check = "v.isdigit()" if on_wire else "(v.isascii() and v.isdigit()) or not v"
        return [f"if not ({check}): {_refuse(key)}"]
    return []


def _nibble_field(key: str, field_spec: Mapping[str, Any], *, digits: bool, track: bool) -> FieldSource:
    fixed = field_spec["len_type"] == 0
    left_pad: str = field_spec.get("left_pad", "")[:1]
    right_pad: str = field_spec.get("right_pad", "")[:1]
    if fixed and digits:
        return _fixed_digits(key, field_spec["max_len"], left_pad, right_pad)

    # an odd count: the left pad is stripped if the spec has one and it is there, else the right pad
    strip_pad = [f"if v[0] == {left_pad!r}: v = v[1:]"] if left_pad else []
    if right_pad:
        strip_pad.append(f"{'elif' if strip_pad else 'if'} v[-1] == {right_pad!r}: v = v[:-1]")
    strip_pad.append(f"else: {_refuse(key)}" if strip_pad else _refuse(key))
    check_wire = _character_checks(key, track=track, digits=digits, on_wire=True)
    decode = [
        *_read_length(key, field_spec),
        "if n == 0:",
        '    v = ""',
        "else:",
        "    e = o + ((n + 1) >> 1)",
        "    v = body[o:e].hex().upper()",
        f"    if len(v) != (e - o) * 2 or e > len(body): {_refuse(key)}",
        "    if n & 1:",
        *(f"        {line}" for line in strip_pad),
        *(f"    {line}" for line in check_wire),
        "    o = e",
    ]

    if left_pad:
        padded = f"({left_pad!r} + v if n & 1 else v)"
    elif right_pad:
        padded = f"(v + {right_pad!r} if n & 1 else v)"
    else:
        padded = None  # pyiso8583 refuses odd nibble data without a pad
    check_value = _character_checks(key, track=track, digits=digits, on_wire=False)
    encode = [
        "n = len(v)",
        f"if {_wrong_count(field_spec)}: {_refuse(key)}",
        *check_value,
        *([] if padded else [f"if n & 1: {_refuse(key)}"]),
        "try:",
        f"    x = a2b_hex({padded or 'v'})",
        "except ValueError:",
        f"    {_refuse(key)} from None",
        f"x = {_prefixed(key, field_spec)}",
    ]
    return FieldSource(key, tuple(decode), tuple(encode))


def _byte_field(key: str, field_spec: Mapping[str, Any]) -> FieldSource:
    binary = field_spec["data_enc"] == "b"
    if not binary and field_spec["data_enc"] != TEXT_ENCODING:
        raise ValueError(f"field {key}: data encoding {field_spec['data_enc']!r} is not supported")
    fixed = field_spec["len_type"] == 0
    take = (
        ["v = body[o:e].hex().upper()"]
        if binary
        else [
            "try:",
            f"    v = body[o:e].decode({TEXT_ENCODING!r})",
            "except ValueError:",
            f"    {_refuse(key)} from None",
        ]
    )
    read_data = ["e = o + n", f"if e > len(body): {_refuse(key)}", *take, "o = e"]
    decode = [
        *_read_length(key, field_spec),
        *(read_data if fixed else ["if n == 0:", '    v = ""', "else:", *(f"    {line}" for line in read_data)]),
    ]
    encode = (
        "try:",
        "    x = a2b_hex(v)" if binary else f"    x = v.encode({TEXT_ENCODING!r})",
        "except ValueError:",  # binascii.Error and UnicodeEncodeError are ValueErrors
        f"    {_refuse(key)} from None",
        "n = len(x)",
        f"if {_wrong_count(field_spec)}: {_refuse(key)}",
        f"x = {_prefixed(key, field_spec)}",
    )
    return FieldSource(key, tuple(decode), encode)


def field_source(
    key: str, field_spec: Mapping[str, Any], digit_fields: frozenset[str], track_fields: frozenset[str]
) -> FieldSource:
    """The rules of field ``key`` as source; a :class:`ValueError` for a spec these rules do not cover."""
    if field_spec.get("len_count", "bytes") == "nibbles":
        if field_spec["data_enc"] != "b":
            raise ValueError(f"field {key}: nibble counts are supported for binary (BCD) data only")
        return _nibble_field(key, field_spec, digits=key in digit_fields, track=key in track_fields)
    return _byte_field(key, field_spec)
