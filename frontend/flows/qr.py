"""QR payments (PROTOCOL.md §9, docs/qr.md): the request's field 59 goes to the wallet host as a wallet-link
message (one effect, :class:`~frontend.effects.AskWallet`), the wallet's answer comes back in 39, 38 and 59.

- 被扫 sale: journaled first, then ``PAYC``; ``09`` (the wallet waits for the consumer's password) leaves the row
  pending until a query ends it; no answer from the wallet → 98, and a ``REVS`` goes to the wallet by
  store-and-forward (the wallet may or may not have charged: never guess).
- void / refund: name the sale by 61 and quote its voucher (59 ``A4``); no answer from the wallet → 98, and an
  ``RVGB`` (undo the give-back if it happened) goes to the wallet by store-and-forward.
- 主扫 order: journaled as the QR sale it becomes, then ``ORDR``; ``09`` with the order QR in 59.
- query: ``QURY``; when 61 names the pending sale or order, a final answer ends its row (approved or declined),
  so settlement totals count what the wallet charged.
- cancel: ``CNCL``; the order's row is declined.
- reversal (0400 with 22 = 032): ``REVS`` for the sale 61 names, ``RVGB`` for a void or refund; the wallet host
  down → store-and-forward.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Generator
from typing import Any, Final

from frontend.effects import (
    AskWallet,
    Effect,
    FindTxn,
    PeerFailure,
    QueueWalletReversal,
    RecordAnswer,
    RecordQrRequest,
    SetStatus,
)
from frontend.flows.answer import Answer, Flow, done, local_date_time, refuse
from frontend.lifecycle import TxnEvent, TxnState, advance, can
from frontend.messages import Kind
from frontend.records import JournalTxn, Session
from wire.constants import ResponseCode
from wire.errors import WireError
from wire.field59 import QR_PENDING, Field59, PaymentCodeError, mask_code, wallet_of
from wire.tlvlink import LinkMessage
from wire.walletlink import Kind as WalletKind

#: Fields every QR request carries (no card data: no 2, 35, 52 or 55).
QR_REQUIRED: Final = ("3", "11", "22", "25", "41", "42", "49", "59", "60", "64")
EXTRA: Final[dict[Kind, tuple[str, ...]]] = {
    Kind.QR_SALE: ("4",),
    Kind.QR_VOID: ("4", "61"),
    Kind.QR_REFUND: ("4", "61"),
    Kind.QR_ORDER: ("4",),
}
#: Wallet answers after which nothing is owed to the wallet for a reversal: undone, or never charged.
REVERSAL_DONE: Final = frozenset({ResponseCode.APPROVED.value, ResponseCode.ORIGINAL_NOT_FOUND.value})
#: The wallet request that undoes each reversible QR journal kind (a terminal's 0400 names the row).
REVERSAL_KINDS: Final[dict[str, str]] = {
    Kind.QR_SALE: WalletKind.REVERSE,
    Kind.QR_VOID: WalletKind.REVERSE_GIVE_BACK,
    Kind.QR_REFUND: WalletKind.REVERSE_GIVE_BACK,
}
#: The journal kind a 主扫 order is kept under: the QR sale it becomes once paid.
ORDER_ROW_KIND: Final = Kind.QR_SALE
_Step = Generator[Effect, Any, Any]


def _code(answer: Answer, code: str) -> Answer:
    answer.fields["39"] = code
    return answer


def _merchant_key(answer: Answer, *, stan: str | None = None, local_date: str | None = None) -> dict[str, str]:
    """What names the request at the wallet (its retry is answered from the wallet's memory): TI MI ST DT."""
    fields = answer.request.fields
    return {"TI": fields["41"], "MI": fields["42"], "ST": stan or fields["11"], "DT": local_date or fields["13"]}


def _record(
    answer: Answer, session: Session, code: str, auth: str | None, status: TxnState, *, row: JournalTxn | None = None
) -> RecordAnswer:
    fields = answer.request.fields
    return RecordAnswer(
        terminal_id=session.terminal_id,
        batch=row.batch if row else session.batch,
        stan=row.stan if row else fields["11"],
        mti=row.mti if row else answer.request.mti,
        response_code=code,
        auth_code=auth,
        status=status,
    )


def qr(answer: Answer, session: Session, kind: Kind, now: dt.datetime) -> Flow:
    request = answer.request
    if (
        any(f not in request for f in QR_REQUIRED + EXTRA.get(kind, ()))
        or "59" in request.errors
        or "13" not in request
    ):
        return (yield from refuse(answer, ResponseCode.FORMAT_ERROR, session, kind))
    try:
        qr_data = Field59.parse(request.fields["59"])
    except WireError:
        return (yield from refuse(answer, ResponseCode.FORMAT_ERROR, session, kind))
    if kind is Kind.QR_SALE:
        return (yield from _sale(answer, session, qr_data, now))
    if kind is Kind.QR_ORDER:
        return (yield from _order(answer, session, qr_data, now))
    original = yield from _original(answer, session)
    if kind is Kind.QR_QUERY:
        return (yield from _query(answer, session, qr_data, original))
    if kind is Kind.QR_CANCEL:
        return (yield from _cancel(answer, session, qr_data, original))
    return (yield from _give_back(answer, session, kind, qr_data, original, now))


def _original(answer: Answer, session: Session) -> _Step:
    ref = answer.request.field61
    if ref is None:
        return None
    row: JournalTxn | None = yield FindTxn(session.terminal_id, ref.batch, ref.stan)
    return row if row is not None and row.kind == ORDER_ROW_KIND else None


def _journal(
    answer: Answer, session: Session, kind: Kind, code_masked: str, now: dt.datetime, original: str | None = None
) -> _Step:
    request = answer.request
    local_date, local_time = local_date_time(request, now)
    return (
        yield RecordQrRequest(
            terminal_id=session.terminal_id,
            batch=session.batch,
            stan=request.fields["11"],
            mti=request.mti,
            kind=kind.value,
            code_masked=code_masked,
            amount=int(request.get("4", "0")),
            local_date=local_date,
            local_time=local_time,
            original_stan=original,
        )
    )


def _sale(answer: Answer, session: Session, qr_data: Field59, now: dt.datetime) -> Flow:
    code = qr_data.payment_code or ""
    try:
        wallet_of(code)
    except PaymentCodeError:
        return (yield from refuse(answer, ResponseCode.INVALID_CARD, session, Kind.QR_SALE))
    rrn = yield from _journal(answer, session, Kind.QR_SALE, mask_code(code), now)
    if rrn is None:
        return (yield from refuse(answer, ResponseCode.DUPLICATE, session, Kind.QR_SALE))
    answer.fields["37"] = rrn
    key = _merchant_key(answer)
    result = yield AskWallet(
        LinkMessage.of(WalletKind.PAY, **key, AM=answer.request.fields["4"].lstrip("0") or "0", A3=code)
    )
    if isinstance(result, PeerFailure):
        yield QueueWalletReversal(LinkMessage.of(WalletKind.REVERSE, **key))
        yield _record(
            answer, session, ResponseCode.CORE_TIMEOUT, None, advance(TxnState.PENDING, TxnEvent.OUTCOME_UNKNOWN)
        )
        return (yield from refuse(answer, ResponseCode.CORE_TIMEOUT, session, Kind.QR_SALE))
    rc = result.result or ResponseCode.SYSTEM_MALFUNCTION
    voucher = result.get("A4")
    if rc == ResponseCode.APPROVED:
        yield _record(answer, session, rc, result.get("AC"), advance(TxnState.PENDING, TxnEvent.LEDGER_APPROVED))
        answer.fields["38"] = result["AC"]
    elif rc == QR_PENDING:
        yield _record(answer, session, rc, None, TxnState.PENDING)  # a query or a reversal ends it
    else:
        yield _record(answer, session, rc, None, advance(TxnState.PENDING, TxnEvent.LEDGER_DECLINED))
    if voucher:
        answer.fields["59"] = Field59(voucher=voucher).encode()
    return (yield from done(_code(answer, rc), session, Kind.QR_SALE))


def _order(answer: Answer, session: Session, qr_data: Field59, now: dt.datetime) -> Flow:
    rrn = yield from _journal(answer, session, ORDER_ROW_KIND, "QR ORDER", now)
    if rrn is None:
        return (yield from refuse(answer, ResponseCode.DUPLICATE, session, Kind.QR_ORDER))
    answer.fields["37"] = rrn
    amount = answer.request.fields["4"].lstrip("0") or "0"
    result = yield AskWallet(
        LinkMessage.of(WalletKind.ORDER, **_merchant_key(answer), AM=amount, QE=qr_data.order_lifetime_s)
    )
    if isinstance(result, PeerFailure):  # nothing is charged by an order: no reversal is owed
        yield _record(
            answer, session, ResponseCode.CORE_TIMEOUT, None, advance(TxnState.PENDING, TxnEvent.LEDGER_DECLINED)
        )
        return (yield from refuse(answer, ResponseCode.CORE_TIMEOUT, session, Kind.QR_ORDER))
    rc = result.result or ResponseCode.SYSTEM_MALFUNCTION
    if rc != QR_PENDING:
        yield _record(answer, session, rc, None, advance(TxnState.PENDING, TxnEvent.LEDGER_DECLINED))
        return (yield from done(_code(answer, rc), session, Kind.QR_ORDER))
    yield _record(answer, session, rc, None, TxnState.PENDING)  # open until paid, cancelled or expired
    lifetime = qr_data.order_lifetime_s
    answer.fields["59"] = Field59(order=result["QO"], qr_content=result.get("QR"), order_lifetime_s=lifetime).encode()
    return (yield from done(_code(answer, rc), session, Kind.QR_ORDER))


def _query(answer: Answer, session: Session, qr_data: Field59, original: JournalTxn | None) -> Flow:
    terminal = answer.request.fields["41"]
    result = yield AskWallet(LinkMessage.of(WalletKind.QUERY, TI=terminal, A4=qr_data.voucher, QO=qr_data.order))
    if isinstance(result, PeerFailure):
        return (yield from refuse(answer, ResponseCode.CORE_TIMEOUT, session, Kind.QR_QUERY))
    rc = result.result or ResponseCode.SYSTEM_MALFUNCTION
    if original is not None and original.status == TxnState.PENDING and rc != QR_PENDING:
        event = TxnEvent.LEDGER_APPROVED if rc == ResponseCode.APPROVED else TxnEvent.LEDGER_DECLINED
        yield _record(answer, session, rc, original.auth_code, advance(TxnState.PENDING, event), row=original)
    if result.get("AM"):
        answer.fields["4"] = f"{int(result['AM']):012d}"
    answer.fields["59"] = Field59(voucher=result.get("A4"), order=result.get("QO")).encode()
    return (yield from done(_code(answer, rc), session, Kind.QR_QUERY))


def _cancel(answer: Answer, session: Session, qr_data: Field59, original: JournalTxn | None) -> Flow:
    if qr_data.order is None:
        return (yield from refuse(answer, ResponseCode.FORMAT_ERROR, session, Kind.QR_CANCEL))
    result = yield AskWallet(LinkMessage.of(WalletKind.CANCEL, TI=answer.request.fields["41"], QO=qr_data.order))
    if isinstance(result, PeerFailure):
        return (yield from refuse(answer, ResponseCode.CORE_TIMEOUT, session, Kind.QR_CANCEL))
    rc = result.result or ResponseCode.SYSTEM_MALFUNCTION
    if rc == ResponseCode.APPROVED and original is not None and original.status == TxnState.PENDING:
        yield _record(answer, session, rc, None, advance(TxnState.PENDING, TxnEvent.LEDGER_DECLINED), row=original)
    return (yield from done(_code(answer, rc), session, Kind.QR_CANCEL))


def _give_back(
    answer: Answer, session: Session, kind: Kind, qr_data: Field59, original: JournalTxn | None, now: dt.datetime
) -> Flow:
    """A void or a refund of the approved QR sale 61 names, quoting its voucher."""
    if original is None or original.status != TxnState.APPROVED or not qr_data.voucher:
        return (yield from refuse(answer, ResponseCode.ORIGINAL_NOT_FOUND, session, kind))
    rrn = yield from _journal(answer, session, kind, "QR " + qr_data.voucher[-4:], now, original.stan)
    if rrn is None:
        return (yield from refuse(answer, ResponseCode.DUPLICATE, session, kind))
    answer.fields["37"] = rrn
    key = _merchant_key(answer)
    amount = answer.request.fields["4"].lstrip("0") or "0"
    wallet_kind = WalletKind.VOID if kind is Kind.QR_VOID else WalletKind.REFUND
    result = yield AskWallet(
        LinkMessage.of(wallet_kind, **key, A4=qr_data.voucher, AM=amount if kind is Kind.QR_REFUND else None)
    )
    if isinstance(result, PeerFailure):
        # The wallet may or may not have given the money back: never guess. An ``RVGB`` under the same key
        # undoes it if it happened (or refuses it should it arrive late), by store-and-forward until the wallet
        # acknowledges; the terminal gets 98 and the sale stands as it was (docs/qr.md).
        yield QueueWalletReversal(LinkMessage.of(WalletKind.REVERSE_GIVE_BACK, **key))
        yield _record(
            answer, session, ResponseCode.CORE_TIMEOUT, None, advance(TxnState.PENDING, TxnEvent.OUTCOME_UNKNOWN)
        )
        return (yield from refuse(answer, ResponseCode.CORE_TIMEOUT, session, kind))
    rc = result.result or ResponseCode.SYSTEM_MALFUNCTION
    approved = rc == ResponseCode.APPROVED
    event = TxnEvent.LEDGER_APPROVED if approved else TxnEvent.LEDGER_DECLINED
    yield _record(answer, session, rc, None, advance(TxnState.PENDING, event))
    if approved and kind is Kind.QR_VOID:
        yield SetStatus(
            terminal_id=session.terminal_id,
            batch=original.batch,
            stan=original.stan,
            mti=original.mti,
            status=advance(original.status, TxnEvent.VOIDED),
        )
    answer.fields["59"] = Field59(voucher=qr_data.voucher).encode()
    return (yield from done(_code(answer, rc), session, kind))


def qr_reversal(answer: Answer, session: Session) -> Flow:
    """A terminal's 0400 for a QR sale (``REVS``), void or refund (``RVGB``) to the wallet (store-and-forward if
    it is down)."""
    request = answer.request
    ref = request.field61
    batch, stan = (ref.batch, ref.stan) if ref is not None else (session.batch, request.get("11"))
    original: JournalTxn | None = yield FindTxn(session.terminal_id, batch, stan)
    if original is None:
        return (yield from refuse(answer, ResponseCode.ORIGINAL_NOT_FOUND, session, Kind.REVERSAL))
    wallet_kind = REVERSAL_KINDS.get(original.kind)
    if wallet_kind is None or not can(original.status, TxnEvent.REVERSED):
        return (yield from refuse(answer, ResponseCode.INVALID_TRANSACTION, session, Kind.REVERSAL))
    reversed_status = advance(original.status, TxnEvent.REVERSED)
    if reversed_status == original.status:
        return (yield from refuse(answer, ResponseCode.APPROVED, session, Kind.REVERSAL))
    key = _merchant_key(answer, stan=original.stan, local_date=original.local_date)
    reversal = LinkMessage.of(wallet_kind, **key)
    mark_reversed = SetStatus(
        terminal_id=session.terminal_id, batch=batch, stan=stan, mti=original.mti, status=reversed_status
    )
    result = yield AskWallet(reversal)
    if isinstance(result, PeerFailure):
        yield QueueWalletReversal(reversal)
        yield mark_reversed
        return (yield from refuse(answer, ResponseCode.APPROVED, session, Kind.REVERSAL))  # the queue owns it now
    rc = result.result or ResponseCode.SYSTEM_MALFUNCTION
    if rc in REVERSAL_DONE:
        yield mark_reversed
        rc = ResponseCode.APPROVED
    return (yield from done(_code(answer, rc), session, Kind.REVERSAL))
