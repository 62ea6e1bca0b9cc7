"""ISO 8583 body codec for both links.

Messages are plain dicts of strings keyed like pyiso8583's (``"t"`` MTI, ``"2"``..``"128"``), without the
bitmap keys (``"p"``, ``"1"``): the codec writes bitmaps itself. Binary fields (52, 55, 62, 64) are upper-case
hex; BCD fields are digit strings; tracks (35, 36) use ``=`` as separator (nibble ``D`` on the wire) and hold the
hex digits of a TDK-encrypted block only when field 53 is ``2610000000000000`` (PROTOCOL.md §8).

Two paths, one behaviour:
- the **fast path** (:mod:`wire.fastcodec`), specialised at import from the same spec dicts, answers every
  well-formed message (about 4× pyiso8583; ``bench/bench_codec.py``);
- the **reference path** (:mod:`wire.refcodec`, pyiso8583 plus acqsim's checks) gets every input the fast path
  declines, so it decides every error: :class:`MessageDecodeError` / :class:`MessageEncodeError` with the field
  and offset, never the value. The caller's dict is never mutated; a bitmap bit for a field outside the POS
  contract is an error naming that field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from wire import refcodec
from wire.errors import MessageDecodeError, MessageEncodeError
from wire.fastcodec import SIGHTINGS_BEFORE_COMPILING, CompiledSpec, Unsupported, compile_spec
from wire.specs import HOST_SPEC, POS_BCD_FIELDS, POS_BITMAP_OFFSET, POS_SPEC, POS_TRACK_FIELDS, pos_track_refused

Fields = dict[str, str]

MAC_LEN: Final = 8
MAC_FIELD: Final = "64"


def compile_pos(compile_after: int | None = SIGHTINGS_BEFORE_COMPILING) -> CompiledSpec:
    """The POS link's fast path (``compile_after``: see :func:`wire.fastcodec.compile_spec`)."""
    return compile_spec(
        POS_SPEC,
        digit_fields=POS_BCD_FIELDS | {"t"},
        track_fields=POS_TRACK_FIELDS,
        message_rule=pos_track_refused,
        compile_after=compile_after,
    )


def compile_host(compile_after: int | None = SIGHTINGS_BEFORE_COMPILING) -> CompiledSpec:
    """The host link's fast path."""
    return compile_spec(HOST_SPEC, compile_after=compile_after)


_POS: Final = compile_pos()
_HOST: Final = compile_host()


def encode_pos_body(fields: Mapping[str, str]) -> bytes:
    """Encode a POS-link body (MTI, bitmap, fields) per PROTOCOL.md §1."""
    try:
        return _POS.encode(fields)
    except Unsupported:
        return refcodec.encode_pos_body(fields)


def decode_pos_body(body: bytes) -> Fields:
    """Decode a POS-link body; raises :class:`MessageDecodeError` with field and offset."""
    try:
        return _POS.decode(body)
    except Unsupported:
        return refcodec.decode_pos_body(body)


def encode_host(fields: Mapping[str, str]) -> bytes:
    """Encode a host-link message (ISO 8583:1987 ASCII) per PROTOCOL.md §2."""
    try:
        return _HOST.encode(fields)
    except Unsupported:
        return refcodec.encode_host(fields)


def decode_host(data: bytes) -> Fields:
    """Decode a host-link message; raises :class:`MessageDecodeError` with field and offset."""
    try:
        return _HOST.decode(data)
    except Unsupported:
        return refcodec.decode_host(data)


def decode_host_partial(data: bytes) -> tuple[Fields, MessageDecodeError | None]:
    """Decode a host-link message as far as it goes: the fields before the first bad one, and the error (with
    field and offset), or every field and ``None``. Lets a server answer a bad message when what identifies it
    (MTI, and fields before the bad one) could be read."""
    try:
        return _HOST.decode(data), None
    except Unsupported:
        return refcodec.decode_host_partial(data)


def pos_mac_block(body: bytes) -> bytes:
    """The MAC input of a POS body: MTI through the last field before 64 (PROTOCOL.md §1).

    A body that carries field 64 ends with the 8 MAC bytes (64 is the last field of the primary bitmap),
    so the block is the body without them.
    """
    if len(body) < POS_BITMAP_OFFSET + 8:
        raise MessageDecodeError("body too short to hold a bitmap", field="p", offset=POS_BITMAP_OFFSET)
    has_mac = body[POS_BITMAP_OFFSET + 7] & 0x01
    return body[:-MAC_LEN] if has_mac else body


def encode_pos_body_with_mac(fields: Mapping[str, str], compute_mac: Callable[[bytes], bytes]) -> bytes:
    """Encode ``fields`` with field 64 set to the MAC that ``compute_mac`` returns for the MAC block.

    Any ``"64"`` already in ``fields`` is replaced. ``compute_mac`` must return exactly 8 bytes.
    """
    placeholder = {**fields, MAC_FIELD: "00" * MAC_LEN}
    body = encode_pos_body(placeholder)
    block = body[:-MAC_LEN]
    mac = compute_mac(block)
    if len(mac) != MAC_LEN:
        raise MessageEncodeError(f"MAC must be {MAC_LEN} bytes, got {len(mac)}", field=MAC_FIELD)
    return block + mac


def pos_body_mac(body: bytes) -> bytes | None:
    """Field 64 of an encoded POS body, or ``None`` if it carries none."""
    if len(body) < POS_BITMAP_OFFSET + 8 or not body[POS_BITMAP_OFFSET + 7] & 0x01:
        return None
    return body[-MAC_LEN:]


def pos_field_offsets(body: bytes) -> dict[str, int]:
    """Where each field of a decodable POS body starts (its length prefix, if any): for errors found in a field's
    value after decoding (a malformed sub-field), which name the field's offset."""
    return refcodec.pos_field_offsets(body)  # only on an error's path: the reference decoder is precise enough
