"""An ISO 8583 codec specialised, at import, from a pyiso8583 spec dict: the fast path of :mod:`wire.codec`.

:func:`compile_spec` reads a spec once and builds, per field, an encoder (``str -> bytes``, length prefix
included) and a decoder (``(body, offset) -> (str, next offset)``) with every spec lookup already resolved;
bitmaps are plain ``int`` bit operations. The result does exactly what pyiso8583 (plus :mod:`wire.codec`'s
BCD and track rules) does for a well-formed message, several times faster.

It only ever *accepts*: anything it is not certain of — a bad value, a short body, a length prefix that
pyiso8583 might read differently (``" 9"``, ``"+9"``), a tertiary bitmap, a key it has no encoder for —
raises :class:`Unsupported`, and the caller hands the same input to the pyiso8583 reference path, which
either succeeds the same way or raises the documented :class:`~wire.errors.MessageDecodeError` /
:class:`~wire.errors.MessageEncodeError` with its field and offset. So errors are, by construction, those of
the reference; ``tests/wire/test_fastcodec.py`` proves with hypothesis that whenever the fast path answers,
its answer is byte-for-byte (encode) and item-for-item (decode, in order) the reference's.

What a spec may use (anything else is a :class:`ValueError` at compile time — use pyiso8583 for it):
no header (``h`` ``max_len`` 0); MTI and bitmaps binary or ASCII; fields with ``data_enc`` ``"b"`` (hex, or
BCD when ``len_count`` is ``"nibbles"``) or ``"ascii"`` (counted in bytes); ``len_enc`` ``"bcd"`` or
``"ascii"`` for variable fields; ``left_pad`` / ``right_pad`` for odd nibble counts.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from wire.specs import SpecDict

#: Encodes one field's value into its length prefix and data.
FieldEncoder = Callable[[str], bytes]
#: Decodes one field from ``body`` at ``offset``: its value and the offset after it.
FieldDecoder = Callable[[bytes, int], tuple[str, int]]

#: Bitmap keys: never in a message dict (the codec writes and reads bitmaps itself).
_BITMAP_KEYS: Final = frozenset({"p", "1"})
#: A track in a dict (``=`` for nibble D) and on the wire: hex digits are a TDK-encrypted track's, allowed or not
#: by the whole message's ``message_rule`` (field 53).
_TRACK_VALUE: Final = re.compile(r"[0-9A-CEF=]*")
_TRACK_WIRE: Final = re.compile(r"[0-9A-F]*")
_SUPPORTED_TEXT: Final = "ascii"
#: An MTI is 4 digits in a message dict (2 BCD bytes or 4 ASCII characters on the wire).
_MTI_CHARS: Final = 4
_LOW_64: Final = (1 << 64) - 1


class Unsupported(Exception):
    """The fast path declines this input; the pyiso8583 reference path decides (and names any error)."""


@dataclass(frozen=True, slots=True)
class CompiledSpec:
    """A spec's encode and decode, specialised. Both raise only :class:`Unsupported`."""

    encode: Callable[[Mapping[str, str]], bytes]
    decode: Callable[[bytes], dict[str, str]]


def _length_prefix(field_spec: Mapping[str, Any]) -> Callable[[int], bytes]:
    len_type: int = field_spec["len_type"]
    if len_type == 0:
        return lambda count: b""
    if field_spec["len_enc"] == "bcd":
        digits = 2 * len_type
        return lambda count: bytes.fromhex(f"{count:0{digits}d}")
    if field_spec["len_enc"] == _SUPPORTED_TEXT:
        return lambda count: f"{count:0{len_type}d}".encode()
    raise ValueError(f"length encoding {field_spec['len_enc']!r} is not supported")


def _length_reader(key: str, field_spec: Mapping[str, Any]) -> Callable[[bytes, int], tuple[int, int]]:
    """``(body, offset) -> (announced count, offset of the data)``; declines anything not plainly decimal."""
    len_type: int = field_spec["len_type"]
    max_len: int = field_spec["max_len"]
    if len_type == 0:
        return lambda body, offset: (max_len, offset)
    if field_spec["len_enc"] == "bcd":

        def read_bcd(body: bytes, offset: int) -> tuple[int, int]:
            digits = body[offset : offset + len_type].hex()
            if len(digits) != 2 * len_type or not digits.isdigit():
                raise Unsupported(key)
            count = int(digits)
            if count > max_len:
                raise Unsupported(key)
            return count, offset + len_type

        return read_bcd
    if field_spec["len_enc"] == _SUPPORTED_TEXT:

        def read_ascii(body: bytes, offset: int) -> tuple[int, int]:
            digits = body[offset : offset + len_type]
            if len(digits) != len_type or not digits.isdigit():  # bytes.isdigit: ASCII 0-9 only
                raise Unsupported(key)
            count = int(digits)
            if count > max_len:
                raise Unsupported(key)
            return count, offset + len_type

        return read_ascii
    raise ValueError(f"field {key}: length encoding {field_spec['len_enc']!r} is not supported")


def _nibble_field(
    key: str, field_spec: Mapping[str, Any], *, digits: bool, track: bool
) -> tuple[FieldEncoder, FieldDecoder]:
    fixed = field_spec["len_type"] == 0
    max_len: int = field_spec["max_len"]
    left_pad: str = field_spec.get("left_pad", "")[:1]
    right_pad: str = field_spec.get("right_pad", "")[:1]
    prefix = _length_prefix(field_spec)
    read_length = _length_reader(key, field_spec)

    pad_odd = _pad_odd(key, left_pad, right_pad)
    if fixed and digits:
        return _fixed_digits_encoder(key, max_len, pad_odd), _fixed_digits_decoder(key, max_len, left_pad, right_pad)

    def encode(value: str) -> bytes:
        count = len(value)
        if (count != max_len) if fixed else (count > max_len):
            raise Unsupported(key)
        if track:
            if not _TRACK_VALUE.fullmatch(value):
                raise Unsupported(key)
            value = value.replace("=", "D")
        elif digits and not ((value.isascii() and value.isdigit()) or not value):
            raise Unsupported(key)
        try:
            return prefix(count) + binascii.a2b_hex(pad_odd(value) if count & 1 else value)
        except ValueError:
            raise Unsupported(key) from None

    return encode, _nibble_decoder(key, read_length, left_pad, right_pad, digits=digits, track=track)


def _pad_odd(key: str, left_pad: str, right_pad: str) -> Callable[[str], str]:
    """Pads an odd count of nibbles to whole bytes as pyiso8583 does: the left pad if the spec has one."""
    if left_pad:
        return lambda value: left_pad + value
    if right_pad:
        return lambda value: value + right_pad

    def refuse(value: str) -> str:
        raise Unsupported(key)  # pyiso8583 refuses odd nibble data without a pad

    return refuse


def _fixed_digits_encoder(key: str, digits: int, pad_odd: Callable[[str], str]) -> FieldEncoder:
    """The commonest POS field (n6, n12, n4 …): no prefix, digits only."""
    if digits & 1:

        def encode_odd(value: str) -> bytes:
            if len(value) != digits or not value.isdigit() or not value.isascii():
                raise Unsupported(key)
            return binascii.a2b_hex(pad_odd(value))

        return encode_odd

    def encode_even(value: str) -> bytes:
        if len(value) != digits or not value.isdigit() or not value.isascii():
            raise Unsupported(key)
        return binascii.a2b_hex(value)

    return encode_even


def _fixed_digits_decoder(key: str, digits: int, left_pad: str, right_pad: str) -> FieldDecoder:
    """The commonest POS field on the way in: no prefix, digits only (so ``hex()``'s case does not matter)."""
    size = (digits + 1) >> 1
    if not digits & 1:

        def decode_even(body: bytes, offset: int) -> tuple[str, int]:
            end = offset + size
            value = body[offset:end].hex()
            if len(value) != digits or not value.isdigit():
                raise Unsupported(key)
            return value, end

        return decode_even
    # an odd count: pyiso8583 strips the left pad if the spec has one and it is there, else the right pad
    strip_left = bool(left_pad)
    if not (left_pad or right_pad) or not (left_pad or right_pad).isdigit():
        raise ValueError(f"field {key}: an odd digit count needs a digit pad")

    def decode_odd(body: bytes, offset: int) -> tuple[str, int]:
        end = offset + size
        value = body[offset:end].hex()
        if len(value) != digits + 1 or not value.isdigit():
            raise Unsupported(key)
        if strip_left:
            if value[0] != left_pad:
                raise Unsupported(key)
            return value[1:], end
        if value[-1] != right_pad:
            raise Unsupported(key)
        return value[:-1], end

    return decode_odd


def _nibble_decoder(
    key: str,
    read_length: Callable[[bytes, int], tuple[int, int]],
    left_pad: str,
    right_pad: str,
    *,
    digits: bool,
    track: bool,
) -> FieldDecoder:
    def decode(body: bytes, offset: int) -> tuple[str, int]:
        count, offset = read_length(body, offset)
        if count == 0:
            return "", offset
        end = offset + ((count + 1) >> 1)
        value = body[offset:end].hex().upper()
        if len(value) != (end - offset) * 2 or end > len(body):
            raise Unsupported(key)
        if count & 1:
            if left_pad and value[0] == left_pad:
                value = value[1:]
            elif right_pad and value[-1] == right_pad:
                value = value[:-1]
            else:
                raise Unsupported(key)
        if track:
            if not _TRACK_WIRE.fullmatch(value):
                raise Unsupported(key)
            value = value.replace("D", "=")
        elif digits and not value.isdigit():
            raise Unsupported(key)
        return value, end

    return decode


def _byte_field(key: str, field_spec: Mapping[str, Any]) -> tuple[FieldEncoder, FieldDecoder]:
    fixed = field_spec["len_type"] == 0
    max_len: int = field_spec["max_len"]
    binary = field_spec["data_enc"] == "b"
    if not binary and field_spec["data_enc"] != _SUPPORTED_TEXT:
        raise ValueError(f"field {key}: data encoding {field_spec['data_enc']!r} is not supported")
    prefix = _length_prefix(field_spec)
    read_length = _length_reader(key, field_spec)

    def encode(value: str) -> bytes:
        try:
            data = binascii.a2b_hex(value) if binary else value.encode(_SUPPORTED_TEXT)
        except ValueError:  # binascii.Error and UnicodeEncodeError are ValueErrors
            raise Unsupported(key) from None
        count = len(data)
        if (count != max_len) if fixed else (count > max_len):
            raise Unsupported(key)
        return prefix(count) + data

    def decode(body: bytes, offset: int) -> tuple[str, int]:
        count, offset = read_length(body, offset)
        if count == 0:
            return "", offset
        end = offset + count
        if end > len(body):
            raise Unsupported(key)
        data = body[offset:end]
        if binary:
            return data.hex().upper(), end
        try:
            return data.decode(_SUPPORTED_TEXT), end
        except ValueError:
            raise Unsupported(key) from None

    return encode, decode


def _field_codec(
    key: str, field_spec: Mapping[str, Any], digit_fields: frozenset[str], track_fields: frozenset[str]
) -> tuple[FieldEncoder, FieldDecoder]:
    if field_spec.get("len_count", "bytes") == "nibbles":
        if field_spec["data_enc"] != "b":
            raise ValueError(f"field {key}: nibble counts are supported for binary (BCD) data only")
        return _nibble_field(key, field_spec, digits=key in digit_fields, track=key in track_fields)
    return _byte_field(key, field_spec)


def _bitmap_codec(bitmap_spec: Mapping[str, Any]) -> tuple[Callable[[int], bytes], Callable[[bytes, int], bytes]]:
    """(bits -> wire bytes, (body, offset) -> the 8 bitmap bytes) for one bitmap, binary or ASCII hex."""
    if bitmap_spec["data_enc"] == "b":

        def read_binary(body: bytes, offset: int) -> bytes:
            raw = body[offset : offset + 8]
            if len(raw) != 8:
                raise Unsupported("p")
            return raw

        return (lambda bits: bits.to_bytes(8, "big")), read_binary
    if bitmap_spec["data_enc"] != _SUPPORTED_TEXT:
        raise ValueError(f"bitmap encoding {bitmap_spec['data_enc']!r} is not supported")

    def read_hex(body: bytes, offset: int) -> bytes:
        raw = body[offset : offset + 16]
        try:
            data = binascii.a2b_hex(raw)  # strict: no spaces, signs or 0x, unlike int(…, 16)
        except ValueError:
            raise Unsupported("p") from None
        if len(data) != 8:
            raise Unsupported("p")
        return data

    return (lambda bits: b"%016X" % bits), read_hex


#: The top bit of a bitmap's first byte: field 1 (a secondary bitmap follows) or 65 (a tertiary one).
_FIRST_BIT: Final = 0x80
#: The decoders of the fields one bitmap byte announces, in field order; ``None``: a field the spec lacks.
DecoderGroup = tuple[tuple[str, FieldDecoder], ...] | None


def _decoder_groups(decoders: list[tuple[str, FieldDecoder] | None]) -> list[list[DecoderGroup]]:
    """For each of the 16 bitmap bytes and each of its 256 values, the decoders to run, so that decoding walks
    bytes, not bits. The top bit of bytes 0 and 8 (fields 1 and 65, the bitmaps) is no field to decode."""
    groups: list[list[DecoderGroup]] = []
    for index in range(16):
        table: list[DecoderGroup] = []
        for byte in range(256):
            group: list[tuple[str, FieldDecoder]] = []
            for bit in range(8):
                number = index * 8 + bit + 1
                if not byte & (0x80 >> bit) or number in (1, 65):
                    continue
                entry = decoders[number]
                if entry is None:
                    break
                group.append(entry)
            else:
                table.append(tuple(group))
                continue
            table.append(None)
        groups.append(table)
    return groups


#: A rule over a whole message (fields that depend on each other): the field it refuses, or ``None``.
MessageRule = Callable[[Mapping[str, str]], str | None]


def compile_spec(
    spec: SpecDict,
    *,
    digit_fields: frozenset[str] = frozenset(),
    track_fields: frozenset[str] = frozenset(),
    message_rule: MessageRule | None = None,
) -> CompiledSpec:
    """Specialise ``spec``. ``digit_fields`` (which may include ``"t"``) must hold decimal digits only;
    ``track_fields`` carry ``=`` in the dict and nibble ``D`` on the wire; a message ``message_rule`` refuses
    is declined (the reference names the error)."""
    if spec["h"]["max_len"] > 0:
        raise ValueError("a spec with a message header is not supported")
    mti_binary = spec["t"]["data_enc"] == "b"
    mti_digits = "t" in digit_fields
    mti_len = 2 if mti_binary else 4
    bitmap_len = 8 if spec["p"]["data_enc"] == "b" else 16
    write_primary, read_primary = _bitmap_codec(spec["p"])
    write_secondary, read_secondary = _bitmap_codec(spec["1"]) if "1" in spec else _bitmap_codec(spec["p"])
    has_secondary = "1" in spec

    encoders: dict[str, tuple[int, int, FieldEncoder]] = {}  # number, its bit in the 128-bit field set
    decoders: list[tuple[str, FieldDecoder] | None] = [None] * 129  # indexed by field number
    for key, field_spec in spec.items():
        if not key.isdigit() or key in ("1", "65") or int(key) > 128:
            continue  # bitmaps, and tertiary fields (left to pyiso8583)
        encode_field, decode_field = _field_codec(key, field_spec, digit_fields, track_fields)
        number = int(key)
        encoders[key] = (number, 1 << (128 - number), encode_field)
        decoders[int(key)] = (key, decode_field)

    def encode(fields: Mapping[str, str]) -> bytes:
        mti = fields.get("t")
        if not isinstance(mti, str) or len(mti) != _MTI_CHARS or (mti_digits and not (mti.isascii() and mti.isdigit())):
            raise Unsupported("t")
        try:
            head = binascii.a2b_hex(mti) if mti_binary else mti.encode(_SUPPORTED_TEXT)
        except ValueError:
            raise Unsupported("t") from None
        slots: list[bytes | None] = [None] * slot_count  # by field number: no sort, whatever the dict's order
        bits = 0  # fields 1..128 as one number: bit 127 is field 1, bit 0 is field 128
        for key, value in fields.items():
            entry = encoders.get(key)
            if entry is None:
                if key == "t" or key in _BITMAP_KEYS:
                    continue
                raise Unsupported(key)
            if not isinstance(value, str):  # str subclasses too (StrEnum constants)
                raise Unsupported(key)
            number, bit, encode_field = entry
            slots[number] = encode_field(value)
            bits |= bit
        if message_rule is not None and message_rule(fields) is not None:
            raise Unsupported("a rule over the whole message")
        secondary = bits & _LOW_64
        if secondary:
            if not has_secondary:
                raise Unsupported("1")
            head += write_primary((bits >> 64) | 1 << 63) + write_secondary(secondary)
        else:
            head += write_primary(bits >> 64)
        return head + b"".join(filter(None, slots))  # every field's bytes are non-empty (data or a length)

    slot_count = max((number for number, _, _ in encoders.values()), default=0) + 1
    groups = _decoder_groups(decoders)

    def decode(body: bytes) -> dict[str, str]:
        raw_mti = body[:mti_len]
        if len(raw_mti) != mti_len:
            raise Unsupported("t")
        if mti_binary:
            mti = raw_mti.hex().upper()
        else:
            try:
                mti = raw_mti.decode(_SUPPORTED_TEXT)
            except ValueError:
                raise Unsupported("t") from None
        if mti_digits and not mti.isdigit():
            raise Unsupported("t")
        message = {"t": mti}
        offset = mti_len + bitmap_len
        bitmap = read_primary(body, mti_len)
        if bitmap[0] & _FIRST_BIT:  # field 1: a secondary bitmap follows
            if not has_secondary:
                raise Unsupported("1")
            secondary = read_secondary(body, offset)
            if secondary[0] & _FIRST_BIT:  # field 65: a tertiary bitmap — left to pyiso8583
                raise Unsupported("65")
            bitmap += secondary
            offset += bitmap_len
        for index, byte in enumerate(bitmap):
            if byte:
                group = groups[index][byte]
                if group is None:
                    raise Unsupported(f"a field of bitmap byte {index}")
                for key, decode_field in group:
                    message[key], offset = decode_field(body, offset)
        if offset != len(body):
            raise Unsupported("extra data")
        if message_rule is not None and message_rule(message) is not None:
            raise Unsupported("a rule over the whole message")
        return message

    return CompiledSpec(encode=encode, decode=decode)
