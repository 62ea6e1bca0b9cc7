"""The merchant platform's core, sans-IO: a merchant-link message and the time in, the answer and the changed
records out. One table maps each kind to the app module that handles it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

from acqkit.numbers import new_number
from merchant import bookings, coupons, members, notices, sales, vouchers
from merchant.decision import Context, Decision
from merchant.model import MerchantBook, Record
from wire.merchantlink import MerchantKind
from wire.tlvlink import LinkMessage

Handler = Callable[[Context, LinkMessage], Decision]
_K = MerchantKind
HANDLERS: Final[dict[str, Handler]] = {
    _K.COUPON_ISSUE: coupons.issue,
    _K.COUPON_REDEEM: coupons.redeem,
    _K.VOUCHER_SELL: vouchers.sell,
    _K.VOUCHER_VERIFY: vouchers.verify,
    _K.VOUCHER_SETTLE: vouchers.settle,
    _K.BOOKING_NEW: bookings.book,
    _K.BOOKING_PAID: bookings.move,
    _K.BOOKING_DONE: bookings.move,
    _K.BOOKING_CANCEL: bookings.move,
    _K.NOTICE_PUSH: notices.push,
    _K.NOTICE_LIST: notices.listing,
    _K.MEMBER_JOIN: members.join,
    _K.MEMBER_FIND: members.find,
    _K.MEMBER_POINTS: members.points,
    _K.SALE: sales.record,
}


class MerchantCore:
    def __init__(self, book: MerchantBook, *, numbers: Callable[[int], str] = new_number) -> None:
        self.book = book
        self._numbers = numbers

    def decide(self, message: LinkMessage, now: float) -> Decision:
        return HANDLERS[message.kind](Context(self.book, now, self._numbers), message)

    def apply(self, records: Sequence[Record]) -> None:
        self.book.apply(tuple(records))
