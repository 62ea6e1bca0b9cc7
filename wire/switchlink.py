"""The scheme switch link (PROTOCOL.md §10): a 46-byte switch header, then ISO 8583:1987 in ASCII. Sans-IO.

One frame = ``LEN`` (2 bytes, big-endian, :mod:`wire.framing`) + header (46) + body. The header:

    offset len  field               acqsim's value
    0      1    header length       0x2E (46), binary
    1      1    header version      0x02, binary
    2      4    total length        header + body, 4 ASCII digits
    6      11   destination id      receiving institution (8 digits) left-aligned, space-filled
    17     11   source id           sending institution, as above
    28     3    reserved            three 0x00 bytes
    31     1    batch number        binary 0..255 (0: not batched)
    32     8    transaction info    8 ASCII characters (acqsim: the sender's STAN, right-aligned, space-filled)
    40     1    user info           binary 0..255 (0)
    41     5    reject code         5 ASCII digits: 00000 = not rejected (:class:`RejectCode`)

The body uses pyiso8583's ``default_ascii`` layout (as the host link, §2) restricted to the switch fields
(:data:`SWITCH_FIELDS`; a bitmap bit for any other field is a :class:`SwitchMessageError` naming it). 32
acquiring, 33 forwarding and 100 receiving institution are exactly 8 digits (institution 4 ‖ region 4). 35 is
track 2 as on the POS link (``=`` separator; the issuer reads its PVV there). 52 is the PIN block under the
sending zone's ZPK as 16 hex characters. 128 is the MAC: ANSI X9.19 (ISO 9797-1 algorithm 3, zero padding)
under the zone's ZAK over the body from the MTI up to field 128, written as 16 upper-case hex characters;
every request and answer carries one. A rejected message goes back with the reject
code set, source and destination swapped, and the body as received (so the sender can match it).
"""

from __future__ import annotations

import copy
import dataclasses
import enum
from collections.abc import Callable, Mapping
from typing import Final

import iso8583

from wire.errors import MessageDecodeError, MessageEncodeError, WireError
from wire.specs import SpecDict

SWITCH_HEADER_LEN: Final = 46
SWITCH_HEADER_VERSION: Final = 0x02
INSTITUTION_ID_LEN: Final = 8
_ID_FIELD_LEN: Final = 11
_TXN_INFO_LEN: Final = 8
_REJECT_LEN: Final = 5
#: Field 128, the MAC: 16 hex characters at the very end of the body.
SWITCH_MAC_FIELD: Final = "128"
SWITCH_MAC_HEX_LEN: Final = 16
#: Institution-id fields: acquiring, forwarding, receiving.
INSTITUTION_FIELDS: Final = ("32", "33", "100")
SWITCH_FIELDS: Final = frozenset(
    {"2", "3", "4", "7", "11", "12", "13", "14", "15", "18", "22", "25", "32", "33", "35", "37", "38", "39", "41", "42"}
    | {"49", "52", "53", "90", "100", "128"}
)
#: Field 18 (merchant category code) when the acquirer names none: 5999, miscellaneous retail.
DEFAULT_MCC: Final = "5999"
#: Card data: masked by every printer.
SWITCH_CARD_FIELDS: Final = frozenset({"2", "35"})
#: Secret material: never printed.
SWITCH_SECRET_FIELDS: Final = frozenset({"52"})

SWITCH_SPEC: Final[SpecDict] = {
    key: value
    for key, value in copy.deepcopy(iso8583.specs.default_ascii).items()
    if not key.isdigit() or key in SWITCH_FIELDS | {"1"}
}
_SWITCH_FIELD_NUMBERS: Final = frozenset(int(k) for k in SWITCH_FIELDS)


class RejectCode(enum.StrEnum):
    """Header reject codes (acqsim's; the public descriptions do not fix the values)."""

    NONE = "00000"
    HEADER_FORMAT = "10001"  # the header does not parse
    BODY_FORMAT = "10002"  # the ISO 8583 body does not decode, or a mandatory field is missing
    MAC_FAILED = "10003"  # field 128 does not verify under the zone's ZAK
    UNKNOWN_SOURCE = "10004"  # the source id (or field 33) is no member of the switch
    CANNOT_PROCESS = "10005"  # the receiver cannot take it now (its HSM is down): send it again later


class SwitchHeaderError(WireError):
    """The 46-byte switch header is short or a header field is not as the contract says."""


class SwitchMessageError(MessageDecodeError):
    """The switch-link body does not decode, carries a field outside the switch contract, or a bad id."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SwitchHeader:
    destination_id: str
    source_id: str
    batch: int = 0
    transaction_info: str = ""
    user_info: int = 0
    reject_code: RejectCode = RejectCode.NONE

    def __post_init__(self) -> None:
        for name, value in (("destination_id", self.destination_id), ("source_id", self.source_id)):
            if len(value) != INSTITUTION_ID_LEN or not value.isdigit():
                raise ValueError(f"switch header {name} must be {INSTITUTION_ID_LEN} digits")
        if len(self.transaction_info) > _TXN_INFO_LEN or not self.transaction_info.isascii():
            raise ValueError(f"switch header transaction info must be at most {_TXN_INFO_LEN} ASCII characters")
        for name, byte in (("batch", self.batch), ("user_info", self.user_info)):
            if not 0 <= byte <= 0xFF:
                raise ValueError(f"switch header {name} must fit one byte")

    def to_bytes(self, body_len: int) -> bytes:
        total = SWITCH_HEADER_LEN + body_len
        if total > 9999:
            raise MessageEncodeError(f"switch message of {total} bytes does not fit the 4-digit total length")
        return b"".join(
            (
                bytes((SWITCH_HEADER_LEN, SWITCH_HEADER_VERSION)),
                f"{total:04d}".encode("ascii"),
                self.destination_id.ljust(_ID_FIELD_LEN).encode("ascii"),
                self.source_id.ljust(_ID_FIELD_LEN).encode("ascii"),
                bytes(3),
                bytes((self.batch,)),
                self.transaction_info.rjust(_TXN_INFO_LEN).encode("ascii"),
                bytes((self.user_info,)),
                self.reject_code.value.encode("ascii"),
            )
        )

    @classmethod
    def parse(cls, frame: bytes) -> SwitchHeader:
        """The header of a whole switch frame (the payload after ``LEN``); checks the total length too."""
        if len(frame) < SWITCH_HEADER_LEN:
            raise SwitchHeaderError(f"need {SWITCH_HEADER_LEN} header bytes, have {len(frame)}", offset=0)
        if frame[0] != SWITCH_HEADER_LEN:
            raise SwitchHeaderError(f"header length must be {SWITCH_HEADER_LEN}", offset=0, field="header length")
        if frame[1] != SWITCH_HEADER_VERSION:
            raise SwitchHeaderError(f"unsupported header version {frame[1]}", offset=1, field="header version")
        total = frame[2:6]
        if not total.isdigit() or int(total) != len(frame):
            raise SwitchHeaderError("total length does not match the frame", offset=2, field="total length")
        ids = []
        for offset, name in ((6, "destination id"), (17, "source id")):
            raw = frame[offset : offset + _ID_FIELD_LEN]
            value = raw.rstrip(b" ")
            if len(value) != INSTITUTION_ID_LEN or not value.isdigit():
                raise SwitchHeaderError(f"{name} must be {INSTITUTION_ID_LEN} digits", offset=offset, field=name)
            ids.append(value.decode("ascii"))
        if frame[28:31] != bytes(3):
            raise SwitchHeaderError("reserved bytes must be zero", offset=28, field="reserved")
        info = frame[32:40]
        if not info.isascii() or not info.decode("ascii").isprintable():
            raise SwitchHeaderError("transaction info must be printable ASCII", offset=32, field="transaction info")
        reject = frame[41:46].decode("ascii", "replace")
        try:
            code = RejectCode(reject)
        except ValueError:
            raise SwitchHeaderError("unknown reject code", offset=41, field="reject code") from None
        return cls(
            destination_id=ids[0],
            source_id=ids[1],
            batch=frame[31],
            transaction_info=info.decode("ascii").strip(),
            user_info=frame[40],
            reject_code=code,
        )


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SwitchMessage:
    """A decoded switch frame: header, fields (strings, ``"t"`` the MTI), and what the MAC covers."""

    header: SwitchHeader
    fields: dict[str, str]
    #: The body from the MTI up to field 128: the MAC input.
    mac_block: bytes
    #: Field 128 as 8 bytes, or ``None`` if the body carries none.
    mac: bytes | None


def _check_institutions(fields: Mapping[str, str], error: type[WireError]) -> None:
    for key in INSTITUTION_FIELDS:
        value = fields.get(key)
        if value is not None and (len(value) != INSTITUTION_ID_LEN or not value.isdigit()):
            raise error(f"institution id must be {INSTITUTION_ID_LEN} digits (institution 4, region 4)", field=key)


def switch_mac_block(fields: Mapping[str, str]) -> bytes:
    """The body of ``fields`` up to field 128: the MAC input. Append :func:`mac_field` of its MAC for the body
    (two steps, so that the MAC can come from an HSM over the network)."""
    unknown = sorted((set(fields) - SWITCH_FIELDS - {"t"}), key=lambda k: int(k) if k.isdigit() else 0)
    if unknown:
        raise MessageEncodeError("field is not part of the switch link", field=unknown[0])
    if "t" not in fields:
        raise MessageEncodeError("message has no MTI", field="t")
    _check_institutions(fields, MessageEncodeError)
    doc = {**fields, SWITCH_MAC_FIELD: "0" * SWITCH_MAC_HEX_LEN}
    try:
        raw, _ = iso8583.encode(doc, SWITCH_SPEC)  # ``doc`` is our own copy: pyiso8583 writes into it
    except iso8583.EncodeError as exc:
        raise MessageEncodeError(exc.msg, field=exc.field) from None
    return bytes(raw[:-SWITCH_MAC_HEX_LEN])


def mac_field(mac: bytes) -> bytes:
    """Field 128's bytes for an 8-byte MAC: 16 upper-case hex characters."""
    if len(mac) != 8:
        raise MessageEncodeError(f"MAC must be 8 bytes, got {len(mac)}", field=SWITCH_MAC_FIELD)
    return mac.hex().upper().encode("ascii")


def encode_switch_body(fields: Mapping[str, str], compute_mac: Callable[[bytes], bytes]) -> bytes:
    """The body with field 128 set to ``compute_mac(block)`` (8 bytes) over the rest of the body."""
    block = switch_mac_block(fields)
    return block + mac_field(compute_mac(block))


def encode_switch_message(
    header: SwitchHeader, fields: Mapping[str, str], compute_mac: Callable[[bytes], bytes]
) -> bytes:
    """A whole switch frame payload: header (its total length filled in) ‖ MAC'd body."""
    body = encode_switch_body(fields, compute_mac)
    return header.to_bytes(len(body)) + body


def _check_bitmap(body: bytes) -> None:
    """Refuse a bitmap bit for a field outside the switch contract, naming it, before pyiso8583 reads on."""
    try:
        primary = int(body[4:20].decode("ascii"), 16)
    except (UnicodeDecodeError, ValueError):
        return  # pyiso8583 reports the bad bitmap with its offset
    bits = [n for n in range(1, 65) if primary & (1 << (64 - n))]
    if 1 in bits:
        try:
            secondary = int(body[20:36].decode("ascii"), 16)
        except (UnicodeDecodeError, ValueError):
            return
        bits += [64 + n for n in range(1, 65) if secondary & (1 << (64 - n))]
    for number in bits:
        if number != 1 and number not in _SWITCH_FIELD_NUMBERS:
            raise SwitchMessageError("bitmap announces a field outside the switch contract", field=str(number))


def decode_switch_message(frame: bytes) -> SwitchMessage:
    """Decode a whole switch frame payload. Raises :class:`SwitchHeaderError` (offset, header field) or
    :class:`SwitchMessageError` (ISO field, offset into the frame) — never with the value that was read."""
    header = SwitchHeader.parse(frame)
    body = frame[SWITCH_HEADER_LEN:]
    _check_bitmap(body)
    try:
        decoded, _ = iso8583.decode(body, SWITCH_SPEC)
    except iso8583.DecodeError as exc:
        raise SwitchMessageError(exc.msg, field=exc.field, offset=SWITCH_HEADER_LEN + exc.pos) from None
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise SwitchMessageError(f"cannot decode ({type(exc).__name__})", offset=SWITCH_HEADER_LEN) from None
    fields = {k: v for k, v in decoded.items() if k not in ("p", "1")}
    _check_institutions(fields, SwitchMessageError)
    mac_hex = fields.get(SWITCH_MAC_FIELD)
    mac: bytes | None = None
    block = body
    if mac_hex is not None:
        try:
            mac = bytes.fromhex(mac_hex)
        except ValueError:
            raise SwitchMessageError("MAC is not hex", field=SWITCH_MAC_FIELD) from None
        block = body[:-SWITCH_MAC_HEX_LEN]
    return SwitchMessage(header=header, fields=fields, mac_block=block, mac=mac)


def reject_frame(frame: bytes, code: RejectCode, *, own_id: str) -> bytes:
    """The answer to a frame the switch cannot take: its body as received behind a header whose reject code is
    set, addressed back to the sender (the sender's source id when the header parsed, else unknown zeros)."""
    try:
        received = SwitchHeader.parse(frame)
        back_to = received.source_id
        info = received.transaction_info
        body = frame[SWITCH_HEADER_LEN:]
    except SwitchHeaderError:
        back_to, info = "0" * INSTITUTION_ID_LEN, ""
        body = frame[SWITCH_HEADER_LEN:] if len(frame) > SWITCH_HEADER_LEN else b""
    header = SwitchHeader(destination_id=back_to, source_id=own_id, transaction_info=info, reject_code=code)
    return header.to_bytes(len(body)) + body


def describe_switch(frame: bytes) -> dict[str, object]:
    """The traced form of a switch frame: header fields and the body with card data masked, no PIN block."""
    from wire.dissect import HIDDEN
    from wire.masking import mask_pan, mask_track

    message = decode_switch_message(frame)
    fields: dict[str, str] = {}
    for key, value in message.fields.items():
        if key in SWITCH_SECRET_FIELDS:
            fields[key] = HIDDEN  # as every other link's trace shows a PIN block
        elif key == "2":
            fields[key] = mask_pan(value)
        elif key in SWITCH_CARD_FIELDS:
            fields[key] = mask_track(value)
        else:
            fields[key] = value
    header = message.header
    return {
        "destination": header.destination_id,
        "source": header.source_id,
        "reject_code": header.reject_code.value,
        "fields": fields,
    }
