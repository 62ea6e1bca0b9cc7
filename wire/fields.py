"""Sub-field layouts of the POS link (PROTOCOL.md §1, §3) and field 54 of both links.

Each is a frozen dataclass with ``parse(text)`` (the decoded field value) and ``encode() -> str``; bad values
raise :class:`wire.errors.MessageDecodeError` naming the field.
"""

from __future__ import annotations

import dataclasses
from typing import Final

from wire.errors import MessageDecodeError


def _digits(value: str, width: int, field: str, what: str) -> str:
    if len(value) != width or not value.isdigit():
        raise MessageDecodeError(f"{what} must be {width} digits", field=field)
    return value


# --- field 60 ------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Field60:
    """60.1 message type code n2, 60.2 batch number n6, 60.3 network management code n3, then extras."""

    txn_type: str
    batch: str = "000000"
    network_code: str = "000"
    extra: str = ""  # 60.4 onwards, kept as digits

    def __post_init__(self) -> None:
        _digits(self.txn_type, 2, "60", "60.1 type")
        _digits(self.batch, 6, "60", "60.2 batch")
        _digits(self.network_code, 3, "60", "60.3 network code")
        if self.extra and not self.extra.isdigit():
            raise MessageDecodeError("60.4+ must be digits", field="60")

    @classmethod
    def parse(cls, value: str) -> Field60:
        if len(value) < 8:
            raise MessageDecodeError("field 60 needs at least 60.1 and 60.2 (8 digits)", field="60")
        return cls(txn_type=value[0:2], batch=value[2:8], network_code=value[8:11] or "000", extra=value[11:])

    def encode(self) -> str:
        return self.txn_type + self.batch + self.network_code + self.extra


# --- field 61 ------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Field61:
    """Original transaction: batch n6, STAN n6, and (refunds) date MMDD n4."""

    batch: str
    stan: str
    date: str | None = None

    def __post_init__(self) -> None:
        _digits(self.batch, 6, "61", "61 original batch")
        _digits(self.stan, 6, "61", "61 original STAN")
        if self.date is not None:
            _digits(self.date, 4, "61", "61 original date")

    @classmethod
    def parse(cls, value: str) -> Field61:
        """12 digits (batch, STAN) or 16 (and date); further digits (61.4 onwards) are ignored."""
        if len(value) < 12 or 12 < len(value) < 16:
            raise MessageDecodeError("field 61 needs batch and STAN (12 digits), optionally a date (16)", field="61")
        date = value[12:16] if len(value) >= 16 else None
        return cls(batch=value[0:6], stan=value[6:12], date=date)

    def encode(self) -> str:
        return self.batch + self.stan + (self.date or "")


# --- field 48: settlement totals and batch upload ------------------------------------------------------

FLAG_BALANCED: Final = "1"
FLAG_NOT_BALANCED: Final = "2"
FLAG_ERROR: Final = "3"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CardTotals:
    """31 digits: debit amount n12, debit count n3, credit amount n12, credit count n3, flag n1."""

    debit_amount: int = 0
    debit_count: int = 0
    credit_amount: int = 0
    credit_count: int = 0
    flag: str = "0"

    def __post_init__(self) -> None:
        for name, value, limit in (
            ("debit amount", self.debit_amount, 10**12),
            ("debit count", self.debit_count, 10**3),
            ("credit amount", self.credit_amount, 10**12),
            ("credit count", self.credit_count, 10**3),
        ):
            if not 0 <= value < limit:
                raise MessageDecodeError(f"settlement {name} out of range", field="48")
        _digits(self.flag, 1, "48", "settlement flag")

    @classmethod
    def parse(cls, value: str) -> CardTotals:
        _digits(value, 31, "48", "settlement totals block")
        return cls(
            debit_amount=int(value[0:12]),
            debit_count=int(value[12:15]),
            credit_amount=int(value[15:27]),
            credit_count=int(value[27:30]),
            flag=value[30],
        )

    def encode(self) -> str:
        return (
            f"{self.debit_amount:012d}{self.debit_count:03d}{self.credit_amount:012d}{self.credit_count:03d}{self.flag}"
        )

    def same_totals(self, other: CardTotals) -> bool:
        """Amounts and counts equal (the flag is the answer's verdict, not part of the totals)."""
        return (self.debit_amount, self.debit_count, self.credit_amount, self.credit_count) == (
            other.debit_amount,
            other.debit_count,
            other.credit_amount,
            other.credit_count,
        )


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SettlementTotals:
    """Field 48 of 0500/0510: domestic block then foreign block (62 digits)."""

    domestic: CardTotals = CardTotals()
    foreign: CardTotals = CardTotals()

    @classmethod
    def parse(cls, value: str) -> SettlementTotals:
        _digits(value, 62, "48", "settlement totals")
        return cls(domestic=CardTotals.parse(value[:31]), foreign=CardTotals.parse(value[31:62]))

    def encode(self) -> str:
        return self.domestic.encode() + self.foreign.encode()

    def with_flags(self, domestic: str, foreign: str) -> SettlementTotals:
        return SettlementTotals(
            domestic=dataclasses.replace(self.domestic, flag=domestic),
            foreign=dataclasses.replace(self.foreign, flag=foreign),
        )


CARD_ORG_DOMESTIC: Final = "00"
CARD_ORG_FOREIGN: Final = "01"
MAX_UPLOAD_DETAILS: Final = 8
UPLOAD_DETAIL_WIDTH: Final = 40


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class UploadDetail:
    """One batch-upload detail: card organisation n2, STAN n6, PAN n20 (right-aligned, 0-padded), amount n12."""

    stan: str
    pan: str
    amount: int
    card_org: str = CARD_ORG_DOMESTIC

    def __post_init__(self) -> None:
        _digits(self.card_org, 2, "48", "card organisation")
        _digits(self.stan, 6, "48", "detail STAN")
        if not (self.pan.isdigit() and len(self.pan) <= 20):
            raise MessageDecodeError("detail PAN must be up to 20 digits", field="48")
        if not 0 <= self.amount < 10**12:
            raise MessageDecodeError("detail amount out of range", field="48")

    def encode(self) -> str:
        return f"{self.card_org}{self.stan}{self.pan:0>20}{self.amount:012d}"

    @classmethod
    def parse(cls, value: str) -> UploadDetail:
        _digits(value, 40, "48", "batch upload detail")
        return cls(card_org=value[0:2], stan=value[2:8], pan=value[8:28].lstrip("0"), amount=int(value[28:40]))


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class BatchUploadDetails:
    """Field 48 of 0320/201: n2 count (1–8) then the details."""

    details: tuple[UploadDetail, ...]

    def __post_init__(self) -> None:
        if not 1 <= len(self.details) <= MAX_UPLOAD_DETAILS:
            raise MessageDecodeError(f"batch upload carries 1..{MAX_UPLOAD_DETAILS} details", field="48")

    @classmethod
    def parse(cls, value: str) -> BatchUploadDetails:
        if len(value) < 2 or not value[:2].isdigit():
            raise MessageDecodeError("batch upload needs an n2 count", field="48")
        count = int(value[:2])
        body = value[2:]
        if len(body) != count * UPLOAD_DETAIL_WIDTH:
            raise MessageDecodeError(f"batch upload count {count} does not match its length", field="48")
        return cls(
            details=tuple(
                UploadDetail.parse(body[i : i + UPLOAD_DETAIL_WIDTH]) for i in range(0, len(body), UPLOAD_DETAIL_WIDTH)
            )
        )

    def encode(self) -> str:
        return f"{len(self.details):02d}" + "".join(d.encode() for d in self.details)


# --- field 62: sign-on working keys --------------------------------------------------------------------

KCV_LEN: Final = 4
KEY_LEN: Final = 16
_HEX: Final = frozenset("0123456789ABCDEFabcdef")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SignOnKeys:
    """Field 62 of 0810: PIK‖KCV‖MAK‖KCV[‖TDK‖KCV], keys under the TMK (hex strings, upper case)."""

    pik_under_tmk: str
    pik_kcv: str
    mak_under_tmk: str
    mak_kcv: str
    tdk_under_tmk: str | None = None
    tdk_kcv: str | None = None

    def __post_init__(self) -> None:
        if (self.tdk_under_tmk is None) != (self.tdk_kcv is None):
            raise MessageDecodeError("the track data key needs its check value and vice versa", field="62")
        for name, value, nbytes in (
            ("PIK", self.pik_under_tmk, KEY_LEN),
            ("PIK check value", self.pik_kcv, KCV_LEN),
            ("MAK", self.mak_under_tmk, KEY_LEN),
            ("MAK check value", self.mak_kcv, KCV_LEN),
            ("TDK", self.tdk_under_tmk or "0" * 2 * KEY_LEN, KEY_LEN),
            ("TDK check value", self.tdk_kcv or "0" * 2 * KCV_LEN, KCV_LEN),
        ):
            if len(value) != 2 * nbytes or any(c not in _HEX for c in value):
                raise MessageDecodeError(f"{name} must be {2 * nbytes} hex digits", field="62")

    @classmethod
    def parse(cls, value: str) -> SignOnKeys:
        raw = bytes.fromhex(value) if all(c in "0123456789abcdefABCDEF" for c in value) else b""
        if len(raw) not in (40, 60):
            raise MessageDecodeError("field 62 must hold 40 or 60 bytes of sign-on keys", field="62")

        def part(start: int, length: int) -> str:
            return raw[start : start + length].hex().upper()

        return cls(
            pik_under_tmk=part(0, 16),
            pik_kcv=part(16, 4),
            mak_under_tmk=part(20, 16),
            mak_kcv=part(36, 4),
            tdk_under_tmk=part(40, 16) if len(raw) == 60 else None,
            tdk_kcv=part(56, 4) if len(raw) == 60 else None,
        )

    def encode(self) -> str:
        out = self.pik_under_tmk + self.pik_kcv + self.mak_under_tmk + self.mak_kcv
        if self.tdk_under_tmk is not None and self.tdk_kcv is not None:
            out += self.tdk_under_tmk + self.tdk_kcv
        return out.upper()


# --- field 54: additional amounts ----------------------------------------------------------------------

AMOUNT_TYPE_LEDGER: Final = "01"
AMOUNT_TYPE_AVAILABLE: Final = "02"
ACCOUNT_TYPE_DEFAULT: Final = "00"
#: One entry of field 54: account type n2, amount type n2, currency n3, sign C/D, amount n12.
ADDITIONAL_AMOUNT_LEN: Final = 20


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class AdditionalAmount:
    """ISO 8583 additional amount, 20 characters: account type n2, amount type n2, currency n3, sign C/D, n12."""

    amount: int  # signed, minor units: positive is a credit balance
    amount_type: str = AMOUNT_TYPE_AVAILABLE
    currency: str = "156"
    account_type: str = ACCOUNT_TYPE_DEFAULT

    def __post_init__(self) -> None:
        _digits(self.account_type, 2, "54", "account type")
        _digits(self.amount_type, 2, "54", "amount type")
        _digits(self.currency, 3, "54", "currency")
        if abs(self.amount) >= 10**12:
            raise MessageDecodeError("additional amount out of range", field="54")

    @classmethod
    def parse(cls, value: str) -> AdditionalAmount:
        return cls(account_type=value[0:2], amount_type=value[2:4], currency=value[4:7], amount=_signed_amount(value))

    def encode(self) -> str:
        sign = "C" if self.amount >= 0 else "D"
        return f"{self.account_type}{self.amount_type}{self.currency}{sign}{abs(self.amount):012d}"

    @staticmethod
    def parse_many(value: str) -> tuple[AdditionalAmount, ...]:
        return tuple(AdditionalAmount.parse(entry) for entry in _amount_entries(value))

    @staticmethod
    def encode_many(amounts: tuple[AdditionalAmount, ...] | list[AdditionalAmount]) -> str:
        return "".join(a.encode() for a in amounts)


def read_additional_amounts(value: str) -> list[tuple[str, str, int]]:
    """Field 54 as (amount type, currency, signed amount) of each entry, checked as
    :meth:`AdditionalAmount.parse_many` checks it but without an object per entry: the front-end reads the 54
    of every ledger answer, and an :class:`AdditionalAmount` checks its digits a second time when built."""
    return [(entry[2:4], entry[4:7], _signed_amount(entry)) for entry in _amount_entries(value)]


def _amount_entries(value: str) -> list[str]:
    if len(value) % ADDITIONAL_AMOUNT_LEN:
        raise MessageDecodeError("field 54 length is not a multiple of 20", field="54")
    return [value[i : i + ADDITIONAL_AMOUNT_LEN] for i in range(0, len(value), ADDITIONAL_AMOUNT_LEN)]


def _signed_amount(entry: str) -> int:
    """The amount of one 20-character entry (n2 n2 n3 C/D n12), every character checked."""
    if len(entry) != ADDITIONAL_AMOUNT_LEN or entry[7] not in "CD" or not (entry[:7] + entry[8:]).isdigit():
        raise MessageDecodeError("additional amount must be n2 n2 n3 C/D n12", field="54")
    magnitude = int(entry[8:])
    return magnitude if entry[7] == "C" else -magnitude


# --- track 2: the PVV (PROTOCOL.md §1) ------------------------------------------------------------------

TRACK_SEPARATOR: Final = "="
#: Track 2 after the separator: expiry YYMM n4, service code n3, PVKI n1, PVV n4, discretionary data.
TRACK_PVKI_AT: Final = 7
TRACK_PVV_AT: Final = slice(8, 12)
TRACK_DISCRETIONARY_MIN: Final = 12


def track2_pvv(track: str) -> tuple[str, str] | None:
    """PVKI and PVV from a track 2 ``PAN=YYMM SSS K VVVV …``, or ``None`` if it carries none."""
    _, sep, rest = track.partition(TRACK_SEPARATOR)
    if not sep or len(rest) < TRACK_DISCRETIONARY_MIN or not rest[:TRACK_DISCRETIONARY_MIN].isdigit():
        return None
    return rest[TRACK_PVKI_AT], rest[TRACK_PVV_AT]
