"""The merchant platform's records: frozen dataclasses, each with an ``ident`` (its key in the store).

Amounts are minor units; times Unix seconds.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any, ClassVar


class CouponState(enum.StrEnum):
    ISSUED = "issued"
    REDEEMED = "redeemed"


class VoucherState(enum.StrEnum):
    SOLD = "sold"
    VERIFIED = "verified"
    SETTLED = "settled"


class BookingState(enum.StrEnum):
    BOOKED = "booked"  # slot held, deposit not yet authorised
    HELD = "held"  # deposit pre-authorised on the guest's card
    COMPLETED = "completed"  # the guest came: pre-authorisation completed
    CANCELLED = "cancelled"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Coupon:
    table: ClassVar[str] = "coupons"
    code: str
    merchant_id: str
    discount: int
    min_spend: int
    expires_at: float
    state: CouponState = CouponState.ISSUED
    redeemed_by: str = ""  # the till reference of the basket it was redeemed on

    @property
    def ident(self) -> str:
        return self.code


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class GroupVoucher:
    table: ClassVar[str] = "vouchers"
    code: str
    merchant_id: str
    deal: str
    face_value: int
    settle_amount: int  # what the merchant is paid for it: face value less the platform's commission
    expires_at: float
    state: VoucherState = VoucherState.SOLD
    verified_by: str = ""

    @property
    def ident(self) -> str:
        return self.code


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Booking:
    table: ClassVar[str] = "bookings"
    number: str
    merchant_id: str
    slot: str
    guest: str
    deposit: int
    state: BookingState = BookingState.BOOKED
    auth_code: str = ""
    stan: str = ""
    final_amount: int = 0

    @property
    def ident(self) -> str:
        return self.number


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Notice:
    table: ClassVar[str] = "notices"
    number: int
    merchant_id: str
    kind: str
    text: str
    created_at: float
    terminal_id: str = ""  # empty: every terminal of the merchant
    key: str = ""  # the sender's notice key (NK): one notice per key, however often it is pushed

    @property
    def ident(self) -> str:
        return f"{self.number:010d}"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Member:
    table: ClassVar[str] = "members"
    number: str
    merchant_id: str
    phone: str
    card_fingerprint: str = ""  # HMAC-SHA-256 of the card number under the data key; never the number
    points: int = 0

    @property
    def ident(self) -> str:
        return self.number


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Sale:
    table: ClassVar[str] = "sales"
    merchant_id: str
    terminal_id: str
    reference: str
    amount: int
    method: str
    at: float
    items: tuple[tuple[str, int, int], ...] = ()  # (name, quantity, unit price)

    @property
    def ident(self) -> str:
        return f"{self.merchant_id} {self.reference}"


Record = Coupon | GroupVoucher | Booking | Notice | Member | Sale
RECORD_TYPES: tuple[type[Record], ...] = (Coupon, GroupVoucher, Booking, Notice, Member, Sale)


def to_json(record: Record) -> dict[str, Any]:
    return dataclasses.asdict(record)


#: The record types whose ``state`` is an enum (JSON gives it back as text).
STATE_TYPES: dict[type[Record], type[enum.StrEnum]] = {
    Coupon: CouponState,
    GroupVoucher: VoucherState,
    Booking: BookingState,
}


def from_json(cls: type[Record], raw: dict[str, Any]) -> Record:
    """The record ``to_json`` wrote (tuples and enums restored)."""
    if cls is Sale:
        raw = {**raw, "items": tuple(tuple(item) for item in raw.get("items", ()))}
    if cls in STATE_TYPES:
        raw = {**raw, "state": STATE_TYPES[cls](raw["state"])}
    return cls(**raw)


@dataclasses.dataclass(slots=True)
class MerchantBook:
    """Every record, by table and ident."""

    tables: dict[str, dict[str, Any]] = dataclasses.field(
        default_factory=lambda: {cls.table: {} for cls in RECORD_TYPES}
    )

    def apply(self, records: tuple[Record, ...]) -> None:
        for record in records:
            self.tables[record.table][record.ident] = record

    def coupons(self) -> dict[str, Coupon]:
        return self.tables[Coupon.table]

    def vouchers(self) -> dict[str, GroupVoucher]:
        return self.tables[GroupVoucher.table]

    def bookings(self) -> dict[str, Booking]:
        return self.tables[Booking.table]

    def notices(self) -> dict[str, Notice]:
        return self.tables[Notice.table]

    def members(self) -> dict[str, Member]:
        return self.tables[Member.table]

    def sales(self) -> dict[str, Sale]:
        return self.tables[Sale.table]
