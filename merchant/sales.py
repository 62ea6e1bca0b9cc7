"""The sales log behind the analytics: each sale (card, QR or cash) with its items, recorded once per till
reference (a retry does not count twice)."""

from __future__ import annotations

from merchant.decision import Context, Decision
from merchant.model import Sale
from wire.constants import ResponseCode
from wire.errors import MessageDecodeError
from wire.merchantlink import METHODS, parse_items
from wire.tlvlink import LinkMessage


def record(ctx: Context, message: LinkMessage) -> Decision:
    method = message["PY"]
    if method not in METHODS:
        return Decision(message.answer(ResponseCode.FORMAT_ERROR, TX=f"PY is one of {', '.join(METHODS)}"))
    try:
        items = parse_items(message.get("IT") or "")
    except MessageDecodeError as exc:
        return Decision(message.answer(ResponseCode.FORMAT_ERROR, TX=str(exc)))
    sale = Sale(
        merchant_id=message["MI"],
        terminal_id=message["TI"],
        reference=message["ER"],
        amount=int(message["AM"]),
        method=method,
        at=float(message.get("AT") or ctx.now),
        items=items,
    )
    if sale.ident in ctx.book.sales():
        return Decision(message.answer(ResponseCode.APPROVED, TX="recorded already"))
    return Decision(message.answer(ResponseCode.APPROVED), (sale,))
