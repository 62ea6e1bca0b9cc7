"""The sales log behind the analytics: each sale (card, QR or cash) with its items, recorded once per till
reference (a retry does not count twice)."""

from __future__ import annotations

from typing import Final

from merchant.decision import Context, Decision
from merchant.model import Sale
from wire.constants import ResponseCode
from wire.errors import MessageDecodeError
from wire.merchantlink import METHODS
from wire.tlvlink import LinkMessage

ITEM_SEPARATOR: Final = ";"
PART_SEPARATOR: Final = "*"

Items = tuple[tuple[str, int, int], ...]


def encode_items(items: Items) -> str:
    """``(("coffee", 2, 1200),)`` → ``"coffee*2*1200"``. Names may not hold ``;`` or ``*``."""
    for name, _, _ in items:
        if ITEM_SEPARATOR in name or PART_SEPARATOR in name:
            raise ValueError(f"an item name may not contain {ITEM_SEPARATOR!r} or {PART_SEPARATOR!r}")
    return ITEM_SEPARATOR.join(f"{name}{PART_SEPARATOR}{qty}{PART_SEPARATOR}{price}" for name, qty, price in items)


def parse_items(text: str) -> Items:
    """Raises :class:`MessageDecodeError` (field ``IT``, character offset of the bad item)."""
    items = []
    at = 0
    for part in text.split(ITEM_SEPARATOR) if text else []:
        pieces = part.split(PART_SEPARATOR)
        if len(pieces) != 3 or not pieces[0] or not pieces[1].isdigit() or not pieces[2].isdigit():
            raise MessageDecodeError("an item is name*quantity*unit price", field="IT", offset=at)
        items.append((pieces[0], int(pieces[1]), int(pieces[2])))
        at += len(part) + 1
    return tuple(items)


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
