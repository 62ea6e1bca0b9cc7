"""Booking (a table or a time slot): booked, the deposit pre-authorised on the guest's card, then completed
when the guest arrives, or cancelled (the terminal cancels the pre-authorisation). A slot is booked once.

The card transactions run on the terminal (pre-authorisation, completion, cancel, PROTOCOL.md §1); the
platform records what they were, as a state table."""

from __future__ import annotations

import dataclasses
from typing import Final

from merchant.decision import Context, Decision
from merchant.model import Booking, BookingState
from wire.constants import ResponseCode
from wire.merchantlink import MerchantKind
from wire.tlvlink import LinkMessage

BOOKING_DIGITS: Final = 8
#: (state, message kind) → the state after it. A pair not here is refused (12).
TRANSITIONS: Final[dict[tuple[BookingState, str], BookingState]] = {
    (BookingState.BOOKED, MerchantKind.BOOKING_PAID): BookingState.HELD,
    (BookingState.HELD, MerchantKind.BOOKING_DONE): BookingState.COMPLETED,
    (BookingState.BOOKED, MerchantKind.BOOKING_CANCEL): BookingState.CANCELLED,
    (BookingState.HELD, MerchantKind.BOOKING_CANCEL): BookingState.CANCELLED,
}


def book(ctx: Context, message: LinkMessage) -> Decision:
    slot, merchant_id = message["SL"], message["MI"]
    taken = any(
        b.merchant_id == merchant_id and b.slot == slot and b.state is not BookingState.CANCELLED
        for b in ctx.book.bookings().values()
    )
    if taken:
        return Decision(message.answer(ResponseCode.DUPLICATE, TX="slot already booked"))
    booking = Booking(
        number=ctx.fresh(BOOKING_DIGITS, ctx.book.bookings()),
        merchant_id=merchant_id,
        slot=slot,
        guest=message["NM"],
        deposit=int(message["AM"]),
    )
    return Decision(message.answer(ResponseCode.APPROVED, BK=booking.number, AM=booking.deposit), (booking,))


def move(ctx: Context, message: LinkMessage) -> Decision:
    """BKPA, BKDN, BKCN: one step of the table."""
    booking = ctx.book.bookings().get(message["BK"])
    if booking is None:
        return Decision(message.answer(ResponseCode.ORIGINAL_NOT_FOUND, TX="no such booking"))
    after = TRANSITIONS.get((booking.state, message.kind))
    if after is None:
        if booking.state in {to for (_, kind), to in TRANSITIONS.items() if kind == message.kind}:
            return Decision(_answer(message, booking))  # a retry of the step just done
        refusal = message.answer(
            ResponseCode.INVALID_TRANSACTION, TX=f"booking is {booking.state.value}", ON=booking.state.value
        )
        return Decision(refusal)
    if message.kind == MerchantKind.BOOKING_PAID:
        moved = dataclasses.replace(booking, state=after, auth_code=message["AC"], stan=message["ST"])
    elif message.kind == MerchantKind.BOOKING_DONE:
        moved = dataclasses.replace(booking, state=after, final_amount=int(message["AM"]))
    else:
        moved = dataclasses.replace(booking, state=after)
    return Decision(_answer(message, moved), (moved,))


def _answer(message: LinkMessage, booking: Booking) -> LinkMessage:
    return message.answer(
        ResponseCode.APPROVED,
        ON=booking.state.value,
        AC=booking.auth_code or None,
        ST=booking.stan or None,
        AM=booking.deposit,
    )
