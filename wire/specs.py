"""pyiso8583 specs for acqsim's two ISO 8583 links.

``POS_SPEC``  — the CUP POS link (terminal ↔ NAC ↔ front-end), PROTOCOL.md §1: 2-byte BCD MTI, 8-byte binary
               primary bitmap, numeric fields BCD. It holds exactly the fields of the contract; a bitmap
               bit for any other field is a decode error.
``HOST_SPEC`` — the host link (front-end ↔ core ledger), PROTOCOL.md §2: ISO 8583:1987 all ASCII (the
               layout of pyiso8583's ``default_ascii``), hex ASCII bitmaps, secondary bitmap when needed.

acqsim's choices where the contract leaves one (and where pyiso8583 needs it spelled out):
- variable BCD fields count their length in digits (nibbles); an odd count is padded with one nibble:
  ``F`` on the right for card data (2, 32, 35, 36), ``0`` on the right for 48, 60 and 61;
- field 22 (n3 in 2 bytes) is padded right with ``0``; field 23 left with ``0``;
- tracks (35, 36) travel as BCD with ``=`` written as nibble ``D``; in decoded dicts they keep the ``D``
  (pyiso8583 treats them as hex), :mod:`wire.codec` converts;
- a track encrypted under the TDK (PROTOCOL.md §8) also holds the hex digits ``A``–``F`` (its 16 encrypted
  digits): allowed only in a message whose field 53 is ``2610000000000000``; in a dict every nibble ``D`` is
  still ``=`` (the encrypted block's too), so the dict form is upper-case ``0-9 A B C E F =``.

Fields values in decoded dicts are strings; binary fields (52, 55, 62, 64) and BCD fields are hex/digit
strings, exactly as pyiso8583 gives them.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Final

from iso8583.specs import default_ascii

from wire.constants import SECURITY_CONTROL_FORMAT0_TDES_TDK

SpecDict = dict[str, dict[str, Any]]


def _fixed_bcd(digits: int, desc: str, **extra: str) -> dict[str, Any]:
    return {
        "data_enc": "b",
        "len_enc": "b",
        "len_type": 0,
        "max_len": digits,
        "len_count": "nibbles",
        "desc": desc,
        **extra,
    }


def _var_bcd(len_bytes: int, max_digits: int, desc: str, pad: str) -> dict[str, Any]:
    return {
        "data_enc": "b",
        "len_enc": "bcd",
        "len_type": len_bytes,
        "max_len": max_digits,
        "len_count": "nibbles",
        "right_pad": pad,
        "desc": desc,
    }


def _fixed_ascii(chars: int, desc: str) -> dict[str, Any]:
    return {
        "data_enc": "ascii",
        "len_enc": "ascii",
        "len_type": 0,
        "max_len": chars,
        "len_count": "bytes",
        "desc": desc,
    }


def _var_ascii(len_bytes: int, max_chars: int, desc: str) -> dict[str, Any]:
    return {
        "data_enc": "ascii",
        "len_enc": "bcd",
        "len_type": len_bytes,
        "max_len": max_chars,
        "len_count": "bytes",
        "desc": desc,
    }


def _fixed_binary(nbytes: int, desc: str) -> dict[str, Any]:
    return {"data_enc": "b", "len_enc": "b", "len_type": 0, "max_len": nbytes, "len_count": "bytes", "desc": desc}


def _var_binary(len_bytes: int, max_bytes: int, desc: str) -> dict[str, Any]:
    return {
        "data_enc": "b",
        "len_enc": "bcd",
        "len_type": len_bytes,
        "max_len": max_bytes,
        "len_count": "bytes",
        "desc": desc,
    }


POS_SPEC: Final[SpecDict] = {
    "h": {
        "data_enc": "b",
        "len_enc": "b",
        "len_type": 0,
        "max_len": 0,
        "len_count": "bytes",
        "desc": "Message Header (carried outside the body)",
    },
    "t": _fixed_binary(2, "Message Type Indicator"),
    "p": _fixed_binary(8, "Bitmap, Primary"),
    "2": _var_bcd(1, 19, "Primary Account Number (PAN)", "F"),
    "3": _fixed_bcd(6, "Processing Code"),
    "4": _fixed_bcd(12, "Amount, Transaction"),
    "11": _fixed_bcd(6, "System Trace Audit Number"),
    "12": _fixed_bcd(6, "Time, Local Transaction (hhmmss)"),
    "13": _fixed_bcd(4, "Date, Local Transaction (MMDD)"),
    "14": _fixed_bcd(4, "Date, Expiration (YYMM)"),
    "15": _fixed_bcd(4, "Date, Settlement (MMDD)"),
    "22": _fixed_bcd(3, "POS Entry Mode", right_pad="0"),
    "23": _fixed_bcd(3, "Card Sequence Number", left_pad="0"),
    "25": _fixed_bcd(2, "POS Condition Code"),
    "26": _fixed_bcd(2, "POS PIN Capture Code"),
    "32": _var_bcd(1, 11, "Acquiring Institution Id Code", "F"),
    "35": _var_bcd(1, 37, "Track 2 Data", "F"),
    "36": _var_bcd(2, 104, "Track 3 Data", "F"),
    "37": _fixed_ascii(12, "Retrieval Reference Number"),
    "38": _fixed_ascii(6, "Authorization Id Response"),
    "39": _fixed_ascii(2, "Response Code"),
    "41": _fixed_ascii(8, "Card Acceptor Terminal Id"),
    "42": _fixed_ascii(15, "Card Acceptor Id Code"),
    "44": _var_ascii(1, 25, "Additional Response Data"),
    "48": _var_bcd(2, 322, "Additional Data, Private", "0"),
    "49": _fixed_ascii(3, "Currency Code, Transaction"),
    "52": _fixed_binary(8, "PIN Data"),
    "53": _fixed_bcd(16, "Security Related Control Information"),
    "54": _var_ascii(2, 20, "Additional Amounts"),
    "55": _var_binary(2, 255, "ICC Data"),
    "59": _var_ascii(2, 999, "Reserved National (QR payments: ASCII TLV, PROTOCOL.md §9)"),
    "60": _var_bcd(2, 17, "Reserved Private (60.1 type, 60.2 batch, 60.3 network code)", "0"),
    "61": _var_bcd(2, 29, "Original Message (batch, STAN, date)", "0"),
    "62": _var_binary(2, 512, "Reserved Private (working keys)"),
    "63": _var_ascii(2, 163, "Reserved Private (card organisation, operator)"),
    "64": _fixed_binary(8, "Message Authentication Code"),
}

#: Fields of the POS link whose decoded value is a card number or track: masked by every printer.
POS_CARD_FIELDS: Final = frozenset({"2", "35", "36"})
#: Fields whose decoded value is secret material: never printed, even with ``--unmask``.
POS_SECRET_FIELDS: Final = frozenset({"52"})
#: Fields carrying a "D" nibble for "=" (tracks).
POS_TRACK_FIELDS: Final = frozenset({"35", "36"})
_TRACK_KEYS_IN_ORDER: Final = tuple(sorted(POS_TRACK_FIELDS, key=int))
#: A clear track in a message dict: digits and the separator.
CLEAR_TRACK_CHARS: Final = frozenset("0123456789=")
#: A track encrypted under the TDK in a message dict: also the hex digits (nibble ``D`` is written ``=``).
ENCRYPTED_TRACK_CHARS: Final = frozenset("0123456789ABCEF=")


def pos_track_refused(fields: Mapping[str, str]) -> str | None:
    """The track field holding encrypted (hex) digits although field 53 does not say the tracks are encrypted,
    or ``None``. Only the character set is checked here; the decrypted track is the front-end's to check."""
    if fields.get("53") == SECURITY_CONTROL_FORMAT0_TDES_TDK:
        return None
    for key in _TRACK_KEYS_IN_ORDER:
        value = fields.get(key)
        if value and not CLEAR_TRACK_CHARS.issuperset(value):
            return key
    return None


#: BCD digit fields of the POS spec: decimal digits only (tracks also carry the separator, so are apart).
POS_BCD_FIELDS: Final = frozenset(
    key
    for key, spec in POS_SPEC.items()
    if key.isdigit() and spec["data_enc"] == "b" and spec["len_count"] == "nibbles" and key not in POS_TRACK_FIELDS
)
#: Offset of the primary bitmap in a POS body (after the 2-byte BCD MTI).
POS_BITMAP_OFFSET: Final = 2

HOST_SPEC: Final[SpecDict] = copy.deepcopy(default_ascii)
#: Fields the host link uses (PROTOCOL.md §2). Others decode (it is the full 1987 layout) but are unused.
HOST_FIELDS: Final = (
    "2",
    "3",
    "4",
    "7",
    "11",
    "12",
    "13",
    "14",
    "22",
    "25",
    "32",
    "35",
    "37",
    "38",
    "39",
    "41",
    "42",
    "48",
    "49",
    "54",
    "90",
)
HOST_CARD_FIELDS: Final = frozenset({"2", "35", "36"})
