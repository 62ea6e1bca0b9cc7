"""QR payments at the terminal, over the NAC like every transaction (PROTOCOL.md §9, docs/qr.md).

- 被扫: :func:`qr_sale` charges the consumer's payment code; an answer ``09`` (pending: the wallet wants the
  consumer's password) is followed by :func:`wait_for_payment`, which polls with the query every
  ``QR_POLL_INTERVAL_S`` until the sale ends or ``QR_POLL_DEADLINE_S`` passes — then the terminal reverses.
- 主扫: :func:`qr_order` asks the host for an order QR to show; :func:`wait_for_payment` polls its result;
  :func:`qr_cancel` closes it unpaid.
- :func:`qr_void` and :func:`qr_refund` quote the voucher number (59 ``A4``) the sale's answer carried.

The reversal of a sale is stored before the sale is sent and dropped only once the sale has ended (paid or
refused for good), so a terminal that stops mid-poll still reverses when it next transacts.
"""

from __future__ import annotations

from typing import Final

import anyio

from terminal.pos import PosTerminal
from terminal.session import Original, Outcome, TerminalError
from wire.field59 import QR_PENDING, Field59

#: How often a pending QR payment or order is asked about, and for how long before giving up.
QR_POLL_INTERVAL_S: Final = 2.0
QR_POLL_DEADLINE_S: Final = 60.0


async def _signed_on(pos: PosTerminal) -> None:
    await pos.send_pending_reversal()
    if not pos.session.state.signed_on:
        signed = await pos.sign_on()
        if signed is None or not signed.approved:
            raise TerminalError("terminal is not signed on and the host refused or did not answer a sign-on")


async def _exchange_qr(
    pos: PosTerminal, kind: str, qr_data: Field59, *, amount: int = 0, original: Original | None = None
) -> Outcome | None:
    return await pos.exchange(kind, pos.session.qr(kind, amount=amount, qr_data=qr_data, original=original))


async def qr_sale(pos: PosTerminal, code: str, amount: int, *, serial: str | None = None) -> Outcome | None:
    await _signed_on(pos)
    return await _exchange_qr(pos, "qr_sale", Field59(payment_code=code, serial=serial), amount=amount)


async def qr_order(pos: PosTerminal, amount: int, *, lifetime_s: int | None = None) -> Outcome | None:
    await _signed_on(pos)
    return await _exchange_qr(pos, "qr_order", Field59(order_lifetime_s=lifetime_s), amount=amount)


async def qr_query(
    pos: PosTerminal, *, voucher: str | None = None, order: str | None = None, original_stan: str | None = None
) -> Outcome | None:
    """The result of a payment (voucher) or an order (``original_stan``: the sale's or the order's STAN, so the
    host can end its journal row); no pending reversal is sent first (it may be the very sale asked about)."""
    original = Original(stan=original_stan) if original_stan else None
    return await _exchange_qr(pos, "qr_query", Field59(voucher=voucher, order=order), original=original)


async def qr_cancel(pos: PosTerminal, order: str) -> Outcome | None:
    await _signed_on(pos)
    return await _exchange_qr(pos, "qr_cancel", Field59(order=order))


async def give_back(pos: PosTerminal, kind: str, amount: int, *, voucher: str, original: Original) -> Outcome | None:
    """``qr_void`` or ``qr_refund`` of the sale ``original`` names, quoting its ``voucher``."""
    await _signed_on(pos)
    return await _exchange_qr(pos, kind, Field59(voucher=voucher), amount=amount, original=original)


async def qr_void(pos: PosTerminal, sale: Outcome) -> Outcome | None:
    original = Original(stan=sale.fields["11"], rrn=sale.fields.get("37", ""))
    amount = int(sale.fields.get("4", "0"))
    return await give_back(pos, "qr_void", amount, voucher=voucher_of(sale) or "", original=original)


async def qr_refund(pos: PosTerminal, sale: Outcome, amount: int) -> Outcome | None:
    original = Original(stan=sale.fields["11"], rrn=sale.fields.get("37", ""), local_date=sale.fields.get("13", ""))
    return await give_back(pos, "qr_refund", amount, voucher=voucher_of(sale) or "", original=original)


def voucher_of(outcome: Outcome) -> str | None:
    return Field59.parse(outcome.fields["59"]).voucher if "59" in outcome.fields else None


def order_of(outcome: Outcome) -> Field59:
    return Field59.parse(outcome.fields.get("59", ""))


async def wait_for_payment(
    pos: PosTerminal,
    pending: Outcome,
    *,
    interval: float = QR_POLL_INTERVAL_S,
    deadline: float = QR_POLL_DEADLINE_S,
) -> Outcome | None:
    """Poll a pending sale (by its voucher) or order (by its order number) until it ends; the last answer
    (``None`` if the host stopped answering). A 被扫 sale still pending at the deadline is reversed."""
    qr_data = Field59.parse(pending.fields.get("59", ""))
    by_order = pending.kind == "qr_order"
    last: Outcome | None = pending
    with anyio.move_on_after(deadline):
        while True:
            stan = pending.fields.get("11")
            if by_order:
                last = await qr_query(pos, order=qr_data.order, original_stan=stan)
            else:
                last = await qr_query(pos, voucher=qr_data.voucher, original_stan=stan)
            if last is not None and last.response_code != QR_PENDING:
                break
            await anyio.sleep(interval)  # the consumer is typing a password or scanning: ask again later
    if last is not None:
        pos.session.qr_settled(pending, last)  # paid: the sale (or the paid order) joins the batch
        pos.save()
    if not by_order and pos.session.state.pending_reversal is not None:
        await pos.send_pending_reversal()  # still pending at the deadline, or no answer: undo the sale
    return last
