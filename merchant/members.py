"""Members (CRM): enrolled by phone, optionally with a card; found by phone or by the card's fingerprint
(HMAC-SHA-256 of the card number under the data key: the platform never sees a card number); points earned
per purchase and redeemed as a discount."""

from __future__ import annotations

import dataclasses
from typing import Final

from merchant.decision import Context, Decision
from merchant.model import Member
from wire.constants import ResponseCode
from wire.tlvlink import LinkMessage

MEMBER_DIGITS: Final = 8
#: Points earned per whole yuan spent.
POINTS_PER_YUAN: Final = 1
#: What one point is worth when redeemed, in minor units (100 points = 1.00 CNY).
POINT_VALUE: Final = 1


def _find(ctx: Context, merchant_id: str, *, phone: str | None, fingerprint: str | None) -> Member | None:
    for member in ctx.book.members().values():
        if member.merchant_id != merchant_id:
            continue
        if (phone and member.phone == phone) or (fingerprint and member.card_fingerprint == fingerprint):
            return member
    return None


def join(ctx: Context, message: LinkMessage) -> Decision:
    phone, fingerprint = message["PH"], message.get("FP")
    if _find(ctx, message["MI"], phone=phone, fingerprint=fingerprint) is not None:
        return Decision(message.answer(ResponseCode.DUPLICATE, TX="already a member"))
    member = Member(
        number=ctx.fresh(MEMBER_DIGITS, ctx.book.members()),
        merchant_id=message["MI"],
        phone=phone,
        card_fingerprint=fingerprint or "",
    )
    return Decision(message.answer(ResponseCode.APPROVED, MB=member.number, PT=0), (member,))


def find(ctx: Context, message: LinkMessage) -> Decision:
    phone, fingerprint = message.get("PH"), message.get("FP")
    if not phone and not fingerprint:
        return Decision(message.answer(ResponseCode.FORMAT_ERROR, TX="give PH or FP"))
    member = _find(ctx, message["MI"], phone=phone, fingerprint=fingerprint)
    if member is None:
        return Decision(message.answer(ResponseCode.ORIGINAL_NOT_FOUND, TX="no such member"))
    return Decision(message.answer(ResponseCode.APPROVED, MB=member.number, PT=member.points))


def points(ctx: Context, message: LinkMessage) -> Decision:
    """``AM`` a purchase earns points; ``PR`` points are redeemed (answer ``DA``: the discount they buy)."""
    member = ctx.book.members().get(message["MB"])
    if member is None or member.merchant_id != message["MI"]:
        return Decision(message.answer(ResponseCode.ORIGINAL_NOT_FOUND, TX="no such member"))
    earned = int(message.get("AM") or 0) // 100 * POINTS_PER_YUAN
    redeemed = int(message.get("PR") or 0)
    if redeemed > member.points + earned:
        return Decision(message.answer(ResponseCode.INSUFFICIENT_FUNDS, TX="not enough points", PT=member.points))
    after = dataclasses.replace(member, points=member.points + earned - redeemed)
    answer = message.answer(ResponseCode.APPROVED, PT=after.points, DA=redeemed * POINT_VALUE if redeemed else None)
    return Decision(answer, (after,))
