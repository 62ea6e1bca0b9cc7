"""The message centre: the platform (or the acquirer's back office) pushes notices — settlement done, a new
parameter version, a chargeback — to a merchant's terminals; a terminal lists the newest.

A push may carry a notice key (``NK``, chosen by the sender: the front-end's ``SETTLE <terminal> <batch>``): a
second push with the same key for the same merchant is answered with the first notice's number and stores
nothing, so a store-and-forward sender that retries after a lost answer delivers its notice exactly once."""

from __future__ import annotations

from merchant.decision import Context, Decision
from merchant.model import Notice
from wire.constants import ResponseCode
from wire.merchantlink import LIST_TAGS, MAX_LISTED, NOTICE_KINDS
from wire.tlvlink import LinkMessage

#: Longest text a listed notice shows (``id|kind|text`` must fit a list tag).
LISTED_TEXT_LEN = 120


def push(ctx: Context, message: LinkMessage) -> Decision:
    kind = message["MK"]
    if kind not in NOTICE_KINDS:
        return Decision(message.answer(ResponseCode.FORMAT_ERROR, TX=f"MK is one of {', '.join(NOTICE_KINDS)}"))
    key = message.get("NK") or ""
    if key and (known := _by_key(ctx, message["MI"], key)) is not None:
        return Decision(message.answer(ResponseCode.APPROVED, ID=known.number, TX="pushed already"))
    notice = Notice(
        number=len(ctx.book.notices()) + 1,
        merchant_id=message["MI"],
        kind=kind,
        text=message["TX"],
        created_at=ctx.now,
        terminal_id=message.get("TI") or "",
        key=key,
    )
    return Decision(message.answer(ResponseCode.APPROVED, ID=notice.number), (notice,))


def _by_key(ctx: Context, merchant_id: str, key: str) -> Notice | None:
    return next(
        (n for n in ctx.book.notices().values() if n.key == key and n.merchant_id == merchant_id),
        None,
    )


def listing(ctx: Context, message: LinkMessage) -> Decision:
    terminal = message.get("TI")
    mine = [
        n
        for n in ctx.book.notices().values()
        if n.merchant_id == message["MI"] and (not n.terminal_id or n.terminal_id == terminal)
    ]
    newest = sorted(mine, key=lambda n: n.number, reverse=True)[:MAX_LISTED]
    listed = {tag: f"{n.number}|{n.kind}|{n.text[:LISTED_TEXT_LEN]}" for tag, n in zip(LIST_TAGS, newest, strict=False)}
    return Decision(message.answer(ResponseCode.APPROVED, CN=len(mine), **listed))
