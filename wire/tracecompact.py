"""The compact traced form of a frame: its own bytes, with every value a trace masks or hides overwritten in
place, so that the dissection of the compact form at read time (:func:`wire.trace.describe`) is exactly what
a dissection at write time would have shown — and the trace file never holds a card number, track, PIN block
or key.

Writing costs a walk over the bitmap and the length prefixes; no field is decoded but the few that are
overwritten (field 3, the card fields). What is overwritten, per link (PROTOCOL.md §2, §3):

- POS and host links: the card fields (2, 35, 36; 48 on a transfer) keep the digits a masked value shows
  (first 6, last 4, the track separator) and every other digit becomes ``0``; the PIN block (52) and the
  working keys (62) become zero bytes (``0`` characters on the ASCII host link). The padding nibble stays.
- HSM link: header and command code, and an answer's error code — nothing after them (keys, PIN blocks).

A frame this module is not certain of — a bitmap bit it has no layout for, a length beyond the field's
maximum, bytes left over, a card field that is not digits, a secondary bitmap on the POS link — and a frame
whose masking needs the field's meaning (55's data objects, 59's payment code, a batch upload's 48) has no
compact form (:func:`compact_frame` answers ``None``): the trace writer dissects those at write time, as before.
``tests/wire/test_tracecompact.py`` proves with hypothesis that whenever there is a compact form, its read-time
dissection equals the write-time dissection of the original.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable
from typing import Final, Literal

from wire.constants import Mti, ProcessingCode
from wire.masking import MASK_CHAR, mask_pan, mask_track
from wire.posframe import BODY_OFFSET
from wire.specs import HOST_CARD_FIELDS, HOST_SPEC, POS_CARD_FIELDS, POS_SPEC, SpecDict

Link = Literal["pos", "host", "hsm", "switch"]

#: The fields whose value a trace never shows (the PIN block, a sign-on answer's working keys): zeroed.
SECRET_FIELDS: Final = frozenset({52, 62})
#: Fields whose masking depends on what they carry: a frame with one of them is dissected at write time.
MEANINGFUL_FIELDS: Final = frozenset({55, 59})
#: Field 48 carries card numbers on a transfer (the target card) and in a batch upload (every card's).
ADDITIONAL_DATA: Final = 48
PROCESSING_CODE: Final = 3
BATCH_UPLOAD_MTIS: Final = frozenset({Mti.BATCH_UPLOAD.value, Mti.BATCH_UPLOAD_RESPONSE.value})
#: HSM request command codes (PROTOCOL.md §4); any other code is an answer, which carries an error code.
HSM_REQUEST_CODES: Final = frozenset({"NC", "A0", "A6", "BU", "M6", "M8", "CA", "CC", "DC", "EC"})
#: The HSM link's header, command code and error code (PROTOCOL.md §4): all its trace shows.
HSM_HEADER_LEN: Final = 4
HSM_CODE_LEN: Final = 2
HSM_ERROR_LEN: Final = 2
#: The codec writes a track separator ("=") as this nibble.
TRACK_SEPARATOR_NIBBLE: Final = "D"
_SECONDARY_BITMAP_BIT: Final = 1


@dataclasses.dataclass(frozen=True, slots=True)
class _FieldLayout:
    """How to step over one field: its length prefix, how its length counts, its maximum."""

    prefix_len: int  # bytes of length prefix (0: fixed length)
    prefix_bcd: bool  # the prefix is BCD (else ASCII digits)
    nibbles: bool  # the length counts BCD digits (2 per byte), else bytes
    max_len: int
    ascii_data: bool
    right_pad: bool  # an odd digit count is padded on the right (else on the left)


def _layouts(spec: SpecDict) -> dict[int, _FieldLayout]:
    layouts = {}
    for key, field in spec.items():
        if not key.isdigit() or key == "1":
            continue
        prefix_len = field["len_type"]
        if prefix_len and field["len_enc"] not in ("bcd", "ascii"):
            continue  # a prefix this walk does not read: the field has no layout, its frames no compact form
        layouts[int(key)] = _FieldLayout(
            prefix_len=prefix_len,
            prefix_bcd=field["len_enc"] == "bcd",
            nibbles=field.get("len_count") == "nibbles",
            max_len=field["max_len"],
            ascii_data=field["data_enc"] == "ascii",
            right_pad="left_pad" not in field,
        )
    return layouts


_POS_LAYOUTS: Final = _layouts(POS_SPEC)
_HOST_LAYOUTS: Final = _layouts(HOST_SPEC)
_POS_CARD: Final = frozenset(int(key) for key in POS_CARD_FIELDS)
_HOST_CARD: Final = frozenset(int(key) for key in HOST_CARD_FIELDS)


class _NotCertain(Exception):
    """The walk is not certain of this frame: it gets no compact form."""


#: The set bits of a byte, as field numbers within its group of 8 (1-based, most significant bit first).
_BITS_OF_BYTE: Final = tuple(tuple(bit + 1 for bit in range(8) if byte >> (7 - bit) & 1) for byte in range(256))


def _bitmap(body: bytes, at: int, ascii_bitmap: bool) -> bytes:
    width = 16 if ascii_bitmap else 8
    raw = body[at : at + width]
    if len(raw) != width:
        raise _NotCertain
    return bytes.fromhex(raw.decode("ascii")) if ascii_bitmap else raw


#: One field as the walk steps over it: number, prefix bytes, prefix BCD, counted in nibbles, maximum.
_Step = tuple[int, int, bool, bool, int]
#: The steps of each bitmap seen (a run's frames share a handful of bitmaps), by layout table; bounded.
_PLANS: Final[dict[tuple[int, bytes], tuple[_Step, ...] | None]] = {}
_MAX_PLANS: Final = 4096


def _plan(layouts: dict[int, _FieldLayout], bitmap: bytes) -> tuple[_Step, ...] | None:
    """The steps over the fields ``bitmap`` announces, or ``None`` when one of them has no layout."""
    key = (id(layouts), bitmap)
    if key in _PLANS:
        return _PLANS[key]
    steps: list[_Step] | None = []
    for index, byte in enumerate(bitmap):
        for bit in _BITS_OF_BYTE[byte]:
            number = 8 * index + bit
            if number == _SECONDARY_BITMAP_BIT:
                continue
            layout = layouts.get(number)
            if layout is None or steps is None:
                steps = None
                continue
            steps.append((number, layout.prefix_len, layout.prefix_bcd, layout.nibbles, layout.max_len))
    plan = None if steps is None else tuple(steps)
    if len(_PLANS) >= _MAX_PLANS:
        _PLANS.clear()
    _PLANS[key] = plan
    return plan


#: A field the compaction overwrites: data start, data end, count and layout (offsets within the body).
_Overwrite = tuple[int, int, int, _FieldLayout]


@dataclasses.dataclass(frozen=True, slots=True)
class _Shape:
    """A frame shape already walked: where its length prefixes sit and what they held, the spans the walk found,
    and which of them the compaction overwrites. A frame with the same bitmap and length whose prefixes hold the
    same bytes at those places walks to the same spans (each prefix's place follows from the ones before it),
    and passed the same checks; so a run's frames, which come in a handful of shapes, are walked once each
    (about 2 µs a frame instead of 15), and compacting one visits only the fields it overwrites."""

    prefixes: tuple[tuple[int, bytes], ...]
    spans: dict[int, tuple[int, int, int]]  # never changed after it is made: callers only read it
    #: The card fields present (48 not among them: it is a card field only on a transfer, seen per frame).
    cards: tuple[_Overwrite, ...]
    #: The secret fields present: data start, data end, the byte they are filled with.
    secrets: tuple[tuple[int, int, bytes], ...]
    #: A field whose masking needs its meaning is present: such a frame has no compact form.
    meaningful: bool


def _shape(
    prefixes: tuple[tuple[int, bytes], ...],
    spans: dict[int, tuple[int, int, int]],
    layouts: dict[int, _FieldLayout],
    card_fields: frozenset[int],
) -> _Shape:
    return _Shape(
        prefixes=prefixes,
        spans=spans,
        cards=tuple((*spans[number], layouts[number]) for number in spans if number in card_fields),
        secrets=tuple(
            (start, end, b"0" if layouts[number].ascii_data else b"\0")
            for number, (start, end, _count) in spans.items()
            if number in SECRET_FIELDS
        ),
        meaningful=bool(MEANINGFUL_FIELDS & spans.keys()),
    )


#: Shapes walked, by layout table, bitmap(s), first field's offset and body length; bounded like ``_PLANS``.
_SHAPES: Final[dict[tuple[int, bytes, int, int], _Shape]] = {}
_MAX_SHAPES: Final = 4096


def _walk(
    body: bytes,
    layouts: dict[int, _FieldLayout],
    card_fields: frozenset[int],
    *,
    bitmap_at: int,
    ascii_bitmap: bool,
    secondary: bool,
) -> _Shape:
    """The shape of ``body``: ``{field: (data start, data end, count)}`` for every field the bitmap(s) announce,
    and the fields among them to overwrite."""
    bitmap = _bitmap(body, bitmap_at, ascii_bitmap)
    offset = bitmap_at + (16 if ascii_bitmap else 8)
    if bitmap[0] & 0x80:
        if not secondary:
            raise _NotCertain
        bitmap += _bitmap(body, offset, ascii_bitmap)
        offset += 16 if ascii_bitmap else 8
    shape_key = (id(layouts), bitmap, offset, len(body))
    shape = _SHAPES.get(shape_key)
    if shape is not None:
        for at, raw in shape.prefixes:
            if body[at : at + len(raw)] != raw:
                break
        else:
            return shape  # the same steps over the same length prefixes: the same spans (see _Shape)
    plan = _plan(layouts, bitmap)
    if plan is None:
        raise _NotCertain
    spans = {}
    prefixes = []
    for number, prefix_len, prefix_bcd, nibbles, max_len in plan:
        if prefix_len:
            start = offset + prefix_len
            raw = body[offset:start]
            text = raw.hex() if prefix_bcd else raw.decode("ascii")
            if len(raw) != prefix_len or not text.isdecimal() or not text.isascii():
                raise _NotCertain
            count = int(text)
            if count > max_len:
                raise _NotCertain
            prefixes.append((offset, raw))
        else:
            start, count = offset, max_len
        offset = start + ((count + 1) >> 1 if nibbles else count)
        spans[number] = (start, offset, count)
    if offset != len(body):
        raise _NotCertain
    if len(_SHAPES) >= _MAX_SHAPES:
        _SHAPES.clear()
    shape = _SHAPES[shape_key] = _shape(tuple(prefixes), spans, layouts, card_fields)
    return shape


def _value(data: bytes, layout: _FieldLayout, count: int) -> str:
    if layout.ascii_data:
        return data.decode("ascii")
    digits = data.hex().upper()
    return digits[:count] if layout.right_pad else digits[len(digits) - count :]


@functools.lru_cache(maxsize=1024)  # a handful of card lengths and separator places
def _hidden_runs(length: int, separator_at: int) -> tuple[tuple[int, int], ...]:
    """Where the mask hides characters of a card value of ``length`` whose track separator is at ``separator_at``
    (``-1``: none, a card number): runs of positions. The mask (``wire.masking``, the one place that decides) is
    asked once per length and separator place, on a value of zeros: it depends on nothing else."""
    if separator_at < 0:
        masked = mask_pan("0" * length)
    else:
        masked = mask_track("0" * separator_at + "=" + "0" * (length - separator_at - 1))
    return tuple((run.start(), run.end()) for run in _MASK_RUN.finditer(masked))


_MASK_RUN: Final = re.compile(re.escape(MASK_CHAR) + "+")


def _zeroed(text: str, runs: tuple[tuple[int, int], ...], at: int) -> str:
    """``text`` with the positions of ``runs`` (counted from ``at``) turned to 0."""
    pieces = []
    kept = 0
    for start, end in runs:
        pieces.append(text[kept : at + start])
        pieces.append("0" * (end - start))
        kept = at + end
    pieces.append(text[kept:])
    return "".join(pieces)


def _masked_card(value: str) -> str:
    """The value with every character its mask hides turned to 0 (same length, separator kept): masked again at
    read time, it shows exactly what the original shows."""
    if not value.isascii():
        raise _NotCertain
    if MASK_CHAR not in value:  # the usual case (digits): every position the mask hides becomes 0
        return _zeroed(value, _hidden_runs(len(value), value.find("=")), 0)
    masked = mask_track(value) if "=" in value else mask_pan(value)
    return "".join(kept if kept == shown else "0" for kept, shown in zip(value, masked, strict=True))


#: The track separator as ``bytes.hex`` writes it.
_SEPARATOR_HEX: Final = TRACK_SEPARATOR_NIBBLE.lower()


def _overwrite_card(frame: bytearray, start: int, end: int, count: int, layout: _FieldLayout) -> None:
    if layout.ascii_data:
        frame[start:end] = _masked_card(frame[start:end].decode("ascii")).encode("ascii")
        return
    digits = frame[start:end].hex()  # one digit a nibble (a padding nibble beside them); the separator is D
    at = 0 if layout.right_pad else len(digits) - count
    separator = digits.find(_SEPARATOR_HEX, at, at + count)
    runs = _hidden_runs(count, separator - at if separator >= 0 else -1)
    frame[start:end] = bytes.fromhex(_zeroed(digits, runs, at))


def _compact_iso(
    frame: bytes,
    body_at: int,
    layouts: dict[int, _FieldLayout],
    card_fields: frozenset[int],
    *,
    ascii_form: bool,
) -> bytes:
    body = frame[body_at:]
    mti_len = 4 if ascii_form else 2
    shape = _walk(body, layouts, card_fields, bitmap_at=mti_len, ascii_bitmap=ascii_form, secondary=ascii_form)
    if shape.meaningful:
        raise _NotCertain
    cards = shape.cards
    spans = shape.spans
    if ADDITIONAL_DATA in spans:
        mti = body[:mti_len].decode("ascii", "replace") if ascii_form else body[:mti_len].hex()
        if mti in BATCH_UPLOAD_MTIS:
            raise _NotCertain
        if PROCESSING_CODE in spans:
            start, end, count = spans[PROCESSING_CODE]
            if _value(body[start:end], layouts[PROCESSING_CODE], count) == ProcessingCode.TRANSFER:
                cards = (*cards, (*spans[ADDITIONAL_DATA], layouts[ADDITIONAL_DATA]))
    compact = bytearray(frame)
    for start, end, count, layout in cards:
        _overwrite_card(compact, body_at + start, body_at + end, count, layout)
    for start, end, zero in shape.secrets:
        at, until = body_at + start, body_at + end
        if zero == b"0" and not compact[at:until].isascii():
            raise _NotCertain  # a reader finds this text field undecodable: zeros would make it decodable
        compact[at:until] = zero * (end - start)
    return bytes(compact)


def _compact_pos(payload: bytes) -> bytes:
    return _compact_iso(payload, BODY_OFFSET, _POS_LAYOUTS, _POS_CARD, ascii_form=False)


def _compact_host(payload: bytes) -> bytes:
    return _compact_iso(payload, 0, _HOST_LAYOUTS, _HOST_CARD, ascii_form=True)


def _compact_hsm(payload: bytes) -> bytes:
    """Header and code; for an answer (whose code is no request's) also its error code."""
    code = payload[HSM_HEADER_LEN : HSM_HEADER_LEN + HSM_CODE_LEN].decode("ascii", "replace")
    shown = HSM_HEADER_LEN + HSM_CODE_LEN + (0 if code in HSM_REQUEST_CODES else HSM_ERROR_LEN)
    return payload[:shown]


_COMPACTORS: Final[dict[str, Callable[[bytes], bytes]]] = {
    "pos": _compact_pos,
    "host": _compact_host,
    "hsm": _compact_hsm,
}


def compact_frame(link: Link, payload: bytes) -> bytes | None:
    """The frame as a trace may keep it, or ``None`` when only a dissection may be kept (see the module)."""
    compactor = _COMPACTORS.get(link)
    if compactor is None or not payload:
        return None if compactor is None else payload
    try:
        return compactor(payload)
    except (_NotCertain, UnicodeDecodeError, ValueError):
        return None


class BatchMemo:
    """The compact forms of the frames of one batch of trace records (one flush): a frame whose body was
    compacted earlier in the batch — the NAC records each message twice, as it came in and as it went on, with
    only the TPDU swapped — reuses that body's compact form. The compaction only ever rewrites the body and
    depends on nothing else (the POS link's TPDU and header are kept as they are), so the result is the same.
    It lives for one batch: it holds nothing the batch's own records do not already hold."""

    __slots__ = ("_bodies",)

    def __init__(self) -> None:
        self._bodies: dict[tuple[str, bytes], bytes | None] = {}

    def compact(self, link: Link, payload: bytes) -> bytes | None:
        """:func:`compact_frame`, once per distinct body of the batch."""
        if link == "hsm":
            return compact_frame(link, payload)  # a slice: nothing worth remembering
        at = BODY_OFFSET if link == "pos" else 0
        key = (link, payload[at:])
        if key in self._bodies:
            body = self._bodies[key]
            return None if body is None else payload[:at] + body
        compact = compact_frame(link, payload)
        self._bodies[key] = None if compact is None else compact[at:]
        return compact
