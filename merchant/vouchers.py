"""Group-buy vouchers (团购核销): a consumer buys a deal on the platform, the merchant verifies the voucher at
the till (it is then used: a second verification is refused), and the platform settles the verified vouchers
to the merchant, less its commission."""

from __future__ import annotations

import dataclasses
from typing import Final

from merchant.decision import Context, Decision
from merchant.model import GroupVoucher, VoucherState
from wire.constants import ResponseCode
from wire.tlvlink import LinkMessage

VOUCHER_DIGITS: Final = 12
VOUCHER_LIFETIME_S: Final = 90 * 86400
#: The platform's commission on a verified voucher, in basis points (5 %).
COMMISSION_BP: Final = 500
USED: Final = ResponseCode.DUPLICATE
EXPIRED: Final = ResponseCode.EXPIRED_CARD


def sell(ctx: Context, message: LinkMessage) -> Decision:
    face = int(message["AM"])
    if face <= 0:
        return Decision(message.answer(ResponseCode.INVALID_AMOUNT, TX="a deal costs something"))
    voucher = GroupVoucher(
        code=ctx.fresh(VOUCHER_DIGITS, ctx.book.vouchers()),
        merchant_id=message["MI"],
        deal=message["NM"],
        face_value=face,
        settle_amount=face - face * COMMISSION_BP // 10_000,
        expires_at=ctx.now + VOUCHER_LIFETIME_S,
    )
    return Decision(message.answer(ResponseCode.APPROVED, GV=voucher.code, AM=face), (voucher,))


def verify(ctx: Context, message: LinkMessage) -> Decision:
    voucher = ctx.book.vouchers().get(message["GV"])
    if voucher is None or voucher.merchant_id != message["MI"]:
        return Decision(message.answer(ResponseCode.ORIGINAL_NOT_FOUND, TX="no such voucher for this merchant"))
    if voucher.state is not VoucherState.SOLD:
        if voucher.verified_by == message["ER"]:  # the same till asking again
            return Decision(message.answer(ResponseCode.APPROVED, NM=voucher.deal, AM=voucher.face_value))
        return Decision(message.answer(USED, TX="voucher already used"))
    if ctx.now >= voucher.expires_at:
        return Decision(message.answer(EXPIRED, TX="voucher expired"))
    used = dataclasses.replace(voucher, state=VoucherState.VERIFIED, verified_by=message["ER"])
    return Decision(message.answer(ResponseCode.APPROVED, NM=voucher.deal, AM=voucher.face_value), (used,))


def settle(ctx: Context, message: LinkMessage) -> Decision:
    """Every verified, unsettled voucher of the merchant becomes settled; the answer says for how much."""
    due = [
        v for v in ctx.book.vouchers().values() if v.merchant_id == message["MI"] and v.state is VoucherState.VERIFIED
    ]
    settled = tuple(dataclasses.replace(v, state=VoucherState.SETTLED) for v in due)
    total = sum(v.settle_amount for v in due)
    return Decision(message.answer(ResponseCode.APPROVED, AM=total, CN=len(due)), settled)
