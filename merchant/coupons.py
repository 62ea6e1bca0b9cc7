"""Coupons: issued by the merchant, redeemed once at the till before payment (the discount comes off the
basket), until they expire. A till that retries a redemption for the same basket (``ER``) gets the same
answer; any other basket is refused."""

from __future__ import annotations

import dataclasses
from typing import Final

from merchant.decision import Context, Decision
from merchant.model import Coupon, CouponState
from wire.constants import ResponseCode
from wire.tlvlink import LinkMessage

COUPON_DIGITS: Final = 12
#: A coupon's life unless the merchant says otherwise (``QE``): 30 days.
COUPON_LIFETIME_S: Final = 30 * 86400
#: ``RC`` for a coupon used already, and for one past its date.
USED: Final = ResponseCode.DUPLICATE
EXPIRED: Final = ResponseCode.EXPIRED_CARD


def issue(ctx: Context, message: LinkMessage) -> Decision:
    discount = int(message["DA"])
    if discount <= 0:
        return Decision(message.answer(ResponseCode.INVALID_AMOUNT, TX="a discount is above zero"))
    coupon = Coupon(
        code=ctx.fresh(COUPON_DIGITS, ctx.book.coupons()),
        merchant_id=message["MI"],
        discount=discount,
        min_spend=int(message.get("MS") or 0),
        expires_at=ctx.now + int(message.get("QE") or COUPON_LIFETIME_S),
    )
    return Decision(message.answer(ResponseCode.APPROVED, CP=coupon.code, AT=int(coupon.expires_at)), (coupon,))


def redeem(ctx: Context, message: LinkMessage) -> Decision:
    coupon = ctx.book.coupons().get(message["CP"])
    basket, reference = int(message["AM"]), message["ER"]
    if coupon is None or coupon.merchant_id != message["MI"]:
        return Decision(message.answer(ResponseCode.ORIGINAL_NOT_FOUND, TX="no such coupon at this merchant"))
    discount = min(coupon.discount, basket)
    if coupon.state is CouponState.REDEEMED:
        if coupon.redeemed_by == reference:  # the same basket asking again
            return Decision(message.answer(ResponseCode.APPROVED, DA=discount, AM=basket - discount))
        return Decision(message.answer(USED, TX="coupon already used"))
    if ctx.now >= coupon.expires_at:
        return Decision(message.answer(EXPIRED, TX="coupon expired"))
    if basket < coupon.min_spend:
        return Decision(message.answer(ResponseCode.INVALID_AMOUNT, TX=f"spend at least {coupon.min_spend} first"))
    used = dataclasses.replace(coupon, state=CouponState.REDEEMED, redeemed_by=reference)
    return Decision(message.answer(ResponseCode.APPROVED, DA=discount, AM=basket - discount), (used,))
