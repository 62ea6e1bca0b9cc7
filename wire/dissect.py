"""Dissection of frames for people and traces: every field with its number, name, format, raw hex and value.

Without ``unmask`` card data is masked (first 6 / last 4) wherever it travels: 2, 35, 36, the transfer target
and the batch-upload details in 48, the card number and tracks inside 55 (ICC data, read as TLV); the PIN block
(52) and the sign-on keys (62) are hidden, and so is a 48 or 55 that cannot be read (it might hold a PAN).
``unmask`` is the engineer's explicit request to see everything, the encrypted PIN block included (it is
what one compares when chasing a 55 or 99). A masked field's raw hex is hidden too. Used by ``acqsim
decode``, the trace writer and the demo's timelines (which never unmask).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Final

import iso8583

from wire.ascii_tlv import QR_FIELD, parse_ascii_tlv
from wire.codec import Fields, decode_host, decode_pos_body
from wire.constants import Mti, ProcessingCode
from wire.errors import MessageDecodeError
from wire.field59 import TAG_PAYMENT_CODE, mask_code
from wire.fields import BatchUploadDetails
from wire.masking import mask_pan, mask_track
from wire.posframe import BODY_OFFSET, PosFrame
from wire.specs import (
    HOST_CARD_FIELDS,
    HOST_SPEC,
    POS_CARD_FIELDS,
    POS_SECRET_FIELDS,
    POS_SPEC,
    POS_TRACK_FIELDS,
    SpecDict,
)
from wire.tlv import ICC_FIELD, shown_tlv

HIDDEN: Final = "[hidden]"
#: Raw hex column width of the text dissection; longer raw values end in "…" (the value column is whole).
RAW_HEX_WIDTH: Final = 40
#: Hidden without ``unmask``: the PIN block, and the working keys of a sign-on answer.
SECRET_FIELDS: Final = POS_SECRET_FIELDS | {"62"}
ADDITIONAL_DATA_FIELD: Final = "48"
BATCH_UPLOAD_MTIS: Final = frozenset({Mti.BATCH_UPLOAD, Mti.BATCH_UPLOAD_RESPONSE})
#: End of batch upload (60.3 202) carries only an n4 count in 48.
UPLOAD_COUNT_DIGITS: Final = 4
#: On transfers (processing code 400000) field 48 is the target PAN: masked like field 2.
TRANSFER_TARGET_FIELD: Final = "48"


def field_format(spec: dict[str, Any]) -> str:
    """``n..19 LLVAR BCD`` style description of a pyiso8583 field spec."""
    binary = spec["data_enc"] == "b"
    digits = spec.get("len_count") == "nibbles"
    kind = "n" if binary and digits else "b" if binary else "ans"
    size = f"{kind}{'..' if spec['len_type'] else ''}{spec['max_len']}"
    # len_type counts length bytes: BCD lengths are 1 byte (LL) or 2 bytes (LLL); ASCII lengths one per L.
    len_bytes = spec["len_type"]
    if not len_bytes:
        var = ""
    elif spec["len_enc"] == "bcd":
        var = " LLVAR" if len_bytes == 1 else " LLLVAR"
    else:
        var = " " + "L" * len_bytes + "VAR"
    enc = " BCD" if binary and digits else " binary" if binary else " ASCII"
    return size + var + enc


def _shown(number: str, value: str, decoded: Fields, card_fields: frozenset[str], unmask: bool) -> str:
    if unmask:
        return value
    if number in SECRET_FIELDS:
        return HIDDEN
    if number in card_fields:
        return mask_track(value) if "=" in value else mask_pan(value)
    if number == ADDITIONAL_DATA_FIELD and decoded.get("t") in BATCH_UPLOAD_MTIS:
        return _shown_upload(value)
    if number == ICC_FIELD:
        try:
            return shown_tlv(bytes.fromhex(value))
        except (ValueError, MessageDecodeError):
            return HIDDEN  # unreadable: it might hold card data
    if number == QR_FIELD:
        return _shown_qr(value)
    return value


def _shown_qr(value: str) -> str:
    """Field 59 as ``A3=6212****…3456; A4=…``: the payment code masked (a live code is a bearer token)."""
    try:
        items = parse_ascii_tlv(value, field=QR_FIELD)
    except MessageDecodeError:
        return HIDDEN  # unreadable: it might hold a payment code
    return "; ".join(f"{tag}={mask_code(v) if tag == TAG_PAYMENT_CODE else v}" for tag, v in items)


def _shown_upload(value: str) -> str:
    """Batch-upload details (0320/201) with each PAN masked; the end-of-upload count (202) as it is."""
    if len(value) <= UPLOAD_COUNT_DIGITS:
        return value
    try:
        details = BatchUploadDetails.parse(value).details
    except MessageDecodeError:
        return HIDDEN
    return "; ".join(f"{d.card_org} STAN {d.stan} {mask_pan(d.pan)} {d.amount:012d}" for d in details)


@dataclasses.dataclass(frozen=True, slots=True)
class FieldView:
    number: str
    name: str
    format: str
    raw_hex: str
    value: str


def _fields(
    body: bytes, spec: SpecDict, card_fields: frozenset[str], unmask: bool, pos: bool, *, with_views: bool = True
) -> tuple[dict[str, str], list[FieldView], dict[str, str]]:
    """The decoded fields, their views (if asked for: formats and raw hex cost a second decode) and the values
    as shown (masked)."""
    decoded = decode_pos_body(body) if pos else decode_host(body)
    if decoded.get("3") == ProcessingCode.TRANSFER:
        card_fields = card_fields | {TRANSFER_TARGET_FIELD}  # 48 carries the target card number
    if not with_views:
        masked = {k: _shown(k, v, decoded, card_fields, unmask) for k, v in decoded.items() if k != "t"}
        return decoded, [], masked
    _, encoded = iso8583.decode(body, spec)
    views = []
    for number, value in decoded.items():
        if number == "t":
            continue
        raw = encoded[number]["len"] + encoded[number]["data"]
        shown = _shown(number, value, decoded, card_fields, unmask)
        raw_hex = HIDDEN if shown != value else raw.hex().upper()  # masked or hidden: its bytes too
        fmt = field_format(spec[number])
        if pos and number in POS_TRACK_FIELDS:
            fmt = "z" + fmt[1:]  # track data: digits and the separator (nibble D)
        views.append(FieldView(number, spec[number]["desc"], fmt, raw_hex, shown))
    return decoded, views, {v.number: v.value for v in views}


def dissect_pos(payload: bytes, *, unmask: bool = False, with_views: bool = True) -> dict[str, Any]:
    """JSON-ready dissection of a POS frame payload (everything after the 2-byte length). ``with_views=False``
    leaves out the per-field views (format, raw hex) that only the text form shows: traces need none."""
    frame = PosFrame.parse(payload)
    try:
        decoded, views, shown = _fields(frame.body, POS_SPEC, POS_CARD_FIELDS, unmask, pos=True, with_views=with_views)
    except MessageDecodeError as exc:
        raise MessageDecodeError(
            exc.reason, field=exc.field, offset=None if exc.offset is None else exc.offset + BODY_OFFSET
        ) from None
    header = frame.header
    return {
        "length": len(payload),
        "tpdu": {"id": f"{frame.tpdu.id:02X}", "dst": frame.tpdu.dst, "src": frame.tpdu.src},
        "header": {
            "app_type": header.app_type,
            "software_version": header.software_version,
            "terminal_status": header.terminal_status,
            "processing_request": header.processing_request,
            "reserved": header.reserved,
        },
        "mti": decoded["t"],
        "bitmap": frame.body[2:10].hex().upper(),
        "fields": shown,
        "_views": views,
    }


def dissect_host(payload: bytes, *, unmask: bool = False, with_views: bool = True) -> dict[str, Any]:
    decoded, views, shown = _fields(payload, HOST_SPEC, HOST_CARD_FIELDS, unmask, pos=False, with_views=with_views)
    return {"length": len(payload), "mti": decoded["t"], "fields": shown, "_views": views}


def as_json(dissection: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in dissection.items() if not k.startswith("_")}


def as_text(dissection: dict[str, Any]) -> str:
    lines = [f"length   {dissection['length']} bytes"]
    if "tpdu" in dissection:
        t = dissection["tpdu"]
        lines.append(f"TPDU     id {t['id']}  dst {t['dst']}  src {t['src']}")
        h = dissection["header"]
        lines.append(
            f"header   app {h['app_type']}  version {h['software_version']}  status {h['terminal_status']}"
            f"  request {h['processing_request']}  reserved {h['reserved']}"
        )
    lines.append(f"MTI      {dissection['mti']}")
    if "bitmap" in dissection:
        lines.append(f"bitmap   {dissection['bitmap']}")
    for view in dissection["_views"]:
        raw = view.raw_hex if len(view.raw_hex) <= RAW_HEX_WIDTH else view.raw_hex[: RAW_HEX_WIDTH - 1] + "…"
        lines.append(f"{view.number:>3}  {view.name[:38]:<38} {view.format:<20} {raw:<{RAW_HEX_WIDTH}} {view.value}")
    return "\n".join(lines)
