"""An ISO 8583 codec specialised, at import, from a pyiso8583 spec dict: the fast path of :mod:`wire.codec`.

:func:`compile_spec` reads a spec once and compiles each field's rules (:mod:`wire.fieldsource`, written there
once as Python source) into an encoder (``str -> bytes``, length prefix included) and a decoder
(``(body, offset) -> (str, next offset)``) with every spec value already a literal; bitmaps are plain ``int``
bit operations. Each message *shape* a run keeps sending — a bitmap on the way in, a dict's keys on the way
out — is compiled once more into a single function with every field's rules unrolled in field order (no call,
loop or lookup per field; the bitmap of an encoded shape is a constant): about twice as fast as the per-field
loop, which still serves shapes not (yet) compiled. A shape is compiled the ``SIGHTINGS_BEFORE_COMPILING``-th
time it is seen, and at most ``MAX_SHAPES`` of each kind per spec: a peer sending junk never gets its frames
compiled, and can at worst hold the per-field loop's speed.

It only ever *accepts*: anything it is not certain of — a bad value, a short body, a length prefix that
pyiso8583 might read differently (``" 9"``, ``"+9"``), a tertiary bitmap, a key it has no encoder for —
raises :class:`Unsupported`, and the caller hands the same input to the pyiso8583 reference path, which
either succeeds the same way or raises the documented :class:`~wire.errors.MessageDecodeError` /
:class:`~wire.errors.MessageEncodeError` with its field and offset. So errors are, by construction, those of
the reference; ``tests/wire/test_fastcodec.py`` proves with hypothesis that whenever the fast path answers,
its answer is byte-for-byte (encode) and item-for-item (decode, in order) the reference's, compiled shapes and
per-field loop alike.

What a spec may use (anything else is a :class:`ValueError` at compile time — use pyiso8583 for it):
no header (``h`` ``max_len`` 0); MTI and bitmaps binary or ASCII; fields with ``data_enc`` ``"b"`` (hex, or
BCD when ``len_count`` is ``"nibbles"``) or ``"ascii"`` (counted in bytes); ``len_enc`` ``"bcd"`` or
``"ascii"`` for variable fields; ``left_pad`` / ``right_pad`` for odd nibble counts.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

from wire.fieldsource import SNIPPET_GLOBALS, TEXT_ENCODING, FieldSource, Unsupported, field_source
from wire.specs import SpecDict

__all__ = ["MAX_SHAPES", "SIGHTINGS_BEFORE_COMPILING", "CompiledSpec", "MessageRule", "Unsupported", "compile_spec"]

#: Encodes one field's value into its length prefix and data.
FieldEncoder = Callable[[str], bytes]
#: Decodes one field from ``body`` at ``offset``: its value and the offset after it.
FieldDecoder = Callable[[bytes, int], tuple[str, int]]
#: A compiled decode shape: ``(body, offset of the first field, MTI) -> message``.
DecodeShape = Callable[[bytes, int, str], dict[str, str]]
#: A compiled encode shape: ``fields -> bitmap(s) and fields``, the bytes after the MTI.
EncodeShape = Callable[[Mapping[str, str]], bytes]

#: Bitmap keys: never in a message dict (the codec writes and reads bitmaps itself).
_BITMAP_KEYS: Final = frozenset({"p", "1"})
#: An MTI is 4 digits in a message dict (2 BCD bytes or 4 ASCII characters on the wire).
_MTI_CHARS: Final = 4
_LOW_64: Final = (1 << 64) - 1

#: Compiled shapes kept per spec and direction: a run sends a handful (each MTI and option set is one); past this
#: many, further shapes take the per-field loop.
MAX_SHAPES: Final = 256
#: A shape is compiled when seen this many times (a frame of junk is seen once), ...
SIGHTINGS_BEFORE_COMPILING: Final = 3
#: ... counting at most this many shapes not compiled yet (then the count starts again).
_MAX_SIGHTED: Final = 4096


@dataclass(frozen=True, slots=True)
class CompiledSpec:
    """A spec's encode and decode, specialised. Both raise only :class:`Unsupported`."""

    encode: Callable[[Mapping[str, str]], bytes]
    decode: Callable[[bytes], dict[str, str]]
    #: How many shapes (encode and decode) have been compiled so far.
    shapes_compiled: Callable[[], int]


def _indented(lines: Iterable[str], depth: int = 1) -> list[str]:
    return [f"{'    ' * depth}{line}" for line in lines]


def _compiled(source: list[str], label: str) -> dict[str, Any]:
    """What ``source`` defines, run with the snippets' globals only."""
    namespace: dict[str, Any] = dict(SNIPPET_GLOBALS)
    exec(compile("\n".join(source), f"<wire.fastcodec {label}>", "exec"), namespace)  # noqa: S102 - our own source
    return namespace


def _field_functions(source: FieldSource) -> tuple[FieldEncoder, FieldDecoder]:
    lines = [
        "def encode_field(v):",
        *_indented(source.encode),
        "    return x",
        "def decode_field(body, o):",
        *_indented(source.decode),
        "    return v, o",
    ]
    compiled = _compiled(lines, f"field {source.key}")
    return compiled["encode_field"], compiled["decode_field"]


Key = TypeVar("Key", bound=Hashable)
Shape = TypeVar("Shape")


class _Shapes(Generic[Key, Shape]):
    """The shapes of one spec and direction compiled so far; ``find`` answers ``None`` for one not compiled (the
    per-field loop serves it), and compiles it on its ``after``-th sighting. Shared by threads (a trace writer
    dissects with the same codec): each step is one dict operation, so a race at worst compiles a shape twice."""

    __slots__ = ("_after", "_build", "_sighted", "compiled")

    def __init__(self, build: Callable[[Key], Shape], after: int) -> None:
        self._build, self._after = build, after
        self.compiled: dict[Key, Shape] = {}
        self._sighted: dict[Key, int] = {}

    def find(self, key: Key) -> Shape | None:
        if len(self.compiled) >= MAX_SHAPES:
            return None
        sightings = self._sighted.get(key, 0) + 1
        if sightings < self._after:
            if len(self._sighted) >= _MAX_SIGHTED:
                self._sighted.clear()
            self._sighted[key] = sightings
            return None
        self._sighted.pop(key, None)
        shape = self.compiled[key] = self._build(key)
        return shape


def _refusing(reason: str) -> Callable[..., Any]:
    """A compiled shape for a shape the fast path never takes (a field the spec lacks): declines at once."""

    def refuse(*_args: object) -> Any:
        raise Unsupported(reason)

    return refuse


def _bitmap_codec(bitmap_spec: Mapping[str, Any]) -> tuple[Callable[[int], bytes], Callable[[bytes, int], bytes]]:
    """(bits -> wire bytes, (body, offset) -> the 8 bitmap bytes) for one bitmap, binary or ASCII hex."""
    if bitmap_spec["data_enc"] == "b":

        def read_binary(body: bytes, offset: int) -> bytes:
            raw = body[offset : offset + 8]
            if len(raw) != 8:
                raise Unsupported("p")
            return raw

        return (lambda bits: bits.to_bytes(8, "big")), read_binary
    if bitmap_spec["data_enc"] != TEXT_ENCODING:
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


def _announced(groups: list[list[DecoderGroup]], bitmap: bytes) -> list[tuple[str, FieldDecoder]]:
    """The fields ``bitmap`` (8 or 16 bytes) announces, in order, each with its decoder; :class:`Unsupported` for a
    field the spec lacks."""
    announced: list[tuple[str, FieldDecoder]] = []
    for index, byte in enumerate(bitmap):
        if byte:
            group = groups[index][byte]
            if group is None:
                raise Unsupported(f"a field of bitmap byte {index}")
            announced += group
    return announced


def _decode_shape(sources: Mapping[str, FieldSource], groups: list[list[DecoderGroup]], bitmap: bytes) -> DecodeShape:
    """Every field of ``bitmap`` decoded in one function, its rules unrolled in field order."""
    try:
        keys = [key for key, _ in _announced(groups, bitmap)]
    except Unsupported as exc:
        return _refusing(str(exc))
    lines = ["def decode_shape(body, o, mti):"]
    for key in keys:
        lines += [*_indented(sources[key].decode), f"    f{key} = v"]
    items = "".join(f', "{key}": f{key}' for key in keys)
    lines += ['    if o != len(body): raise Unsupported("extra data")', f'    return {{"t": mti{items}}}']
    shape: DecodeShape = _compiled(lines, "decode shape")["decode_shape"]
    return shape


def _encode_shape(
    sources: Mapping[str, FieldSource],
    encoders: Mapping[str, tuple[int, int, FieldEncoder]],
    keys: tuple[str, ...],
    write_bitmaps: Callable[[int], bytes | None],
) -> EncodeShape:
    """Every field of a dict with ``keys`` checked and encoded in one function, bitmaps a constant."""
    fields: list[tuple[int, str]] = []
    bits = 0
    for key in keys:
        entry = encoders.get(key)
        if entry is None:
            if key == "t" or key in _BITMAP_KEYS:
                continue
            return _refusing(key)
        fields.append((entry[0], key))
        bits |= entry[1]
    bitmaps = write_bitmaps(bits)
    if bitmaps is None:
        return _refusing("1")
    fields.sort()  # by field number
    lines = ["def encode_shape(fields):"]
    for _, key in fields:
        lines += [
            f'    v = fields["{key}"]',
            f'    if not isinstance(v, str): raise Unsupported("{key}")',  # str subclasses too (StrEnum)
            *_indented(sources[key].encode),
            f"    f{key} = x",
        ]
    lines.append(f"    return b''.join(({bitmaps!r}, {''.join(f'f{key}, ' for _, key in fields)}))")
    shape: EncodeShape = _compiled(lines, "encode shape")["encode_shape"]
    return shape


def compile_spec(
    spec: SpecDict,
    *,
    digit_fields: frozenset[str] = frozenset(),
    track_fields: frozenset[str] = frozenset(),
    message_rule: MessageRule | None = None,
    compile_after: int | None = SIGHTINGS_BEFORE_COMPILING,
) -> CompiledSpec:
    """Specialise ``spec``. ``digit_fields`` (which may include ``"t"``) must hold decimal digits only;
    ``track_fields`` carry ``=`` in the dict and nibble ``D`` on the wire; a message ``message_rule`` refuses
    is declined (the reference names the error). ``compile_after``: the sighting on which a shape is compiled
    (``None``: never, the per-field loop only; tests compare both)."""
    if spec["h"]["max_len"] > 0:
        raise ValueError("a spec with a message header is not supported")
    mti_binary = spec["t"]["data_enc"] == "b"
    mti_digits = "t" in digit_fields
    mti_len = 2 if mti_binary else 4
    bitmap_len = 8 if spec["p"]["data_enc"] == "b" else 16
    write_primary, read_primary = _bitmap_codec(spec["p"])
    write_secondary, read_secondary = _bitmap_codec(spec["1"]) if "1" in spec else _bitmap_codec(spec["p"])
    has_secondary = "1" in spec

    sources: dict[str, FieldSource] = {}
    encoders: dict[str, tuple[int, int, FieldEncoder]] = {}  # number, its bit in the 128-bit field set
    decoders: list[tuple[str, FieldDecoder] | None] = [None] * 129  # indexed by field number
    for key, field_spec in spec.items():
        if not key.isdigit() or key in ("1", "65") or int(key) > 128:
            continue  # bitmaps, and tertiary fields (left to pyiso8583)
        number = int(key)
        sources[key] = field_source(key, field_spec, digit_fields, track_fields)
        encode_field, decode_field = _field_functions(sources[key])
        encoders[key] = (number, 1 << (128 - number), encode_field)
        decoders[number] = (key, decode_field)

    def write_bitmaps(bits: int) -> bytes | None:
        """The bitmap(s) of the fields in ``bits`` (bit 127 is field 1), or ``None`` if the spec has no room."""
        secondary = bits & _LOW_64
        if not secondary:
            return write_primary(bits >> 64)
        if not has_secondary:
            return None
        return write_primary((bits >> 64) | 1 << 63) + write_secondary(secondary)

    def read_mti(fields: Mapping[str, str]) -> bytes:
        mti = fields.get("t")
        if not isinstance(mti, str) or len(mti) != _MTI_CHARS or (mti_digits and not (mti.isascii() and mti.isdigit())):
            raise Unsupported("t")
        try:
            return binascii.a2b_hex(mti) if mti_binary else mti.encode(TEXT_ENCODING)
        except ValueError:
            raise Unsupported("t") from None

    after = compile_after or 0
    encode_shapes: _Shapes[tuple[str, ...], EncodeShape] = _Shapes(
        lambda keys: _encode_shape(sources, encoders, keys, write_bitmaps), after
    )
    compiled_encodes = encode_shapes.compiled

    def encode_by_field(fields: Mapping[str, str]) -> bytes:
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
        bitmaps = write_bitmaps(bits)
        if bitmaps is None:
            raise Unsupported("1")
        return bitmaps + b"".join(filter(None, slots))  # every field's bytes are non-empty (data or a length)

    def encode(fields: Mapping[str, str]) -> bytes:
        head = read_mti(fields)
        keys = tuple(fields)
        shape = compiled_encodes.get(keys) or (encode_shapes.find(keys) if after else None)
        body = encode_by_field(fields) if shape is None else shape(fields)
        if message_rule is not None and message_rule(fields) is not None:
            raise Unsupported("a rule over the whole message")
        return head + body

    slot_count = max((number for number, _, _ in encoders.values()), default=0) + 1
    groups = _decoder_groups(decoders)
    decode_shapes: _Shapes[bytes, DecodeShape] = _Shapes(lambda bitmap: _decode_shape(sources, groups, bitmap), after)
    compiled_decodes = decode_shapes.compiled

    def decode_by_field(body: bytes, offset: int, mti: str, bitmap: bytes) -> dict[str, str]:
        message = {"t": mti}
        for key, decode_field in _announced(groups, bitmap):
            message[key], offset = decode_field(body, offset)
        if offset != len(body):
            raise Unsupported("extra data")
        return message

    def decode(body: bytes) -> dict[str, str]:
        raw_mti = body[:mti_len]
        if len(raw_mti) != mti_len:
            raise Unsupported("t")
        if mti_binary:
            mti = raw_mti.hex().upper()
        else:
            try:
                mti = raw_mti.decode(TEXT_ENCODING)
            except ValueError:
                raise Unsupported("t") from None
        if mti_digits and not mti.isdigit():
            raise Unsupported("t")
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
        shape = compiled_decodes.get(bitmap) or (decode_shapes.find(bitmap) if after else None)
        message = decode_by_field(body, offset, mti, bitmap) if shape is None else shape(body, offset, mti)
        if message_rule is not None and message_rule(message) is not None:
            raise Unsupported("a rule over the whole message")
        return message

    return CompiledSpec(
        encode=encode, decode=decode, shapes_compiled=lambda: len(compiled_encodes) + len(compiled_decodes)
    )
