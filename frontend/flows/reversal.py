"""A terminal's reversal (0400): undo the transaction it names at the ledger, idempotently."""

from __future__ import annotations

import datetime as dt

from core_ledger.api import LedgerOp
from frontend.effects import FindTxn, NextRrn, PeerFailure, QueueReversal, SetStatus
from frontend.flows.answer import Answer, Context, Flow, done, refuse
from frontend.flows.checks import card_number
from frontend.flows.ledger import ask_host, ledger_request
from frontend.lifecycle import TxnEvent, advance, can
from frontend.messages import Kind
from frontend.records import JournalTxn, Session
from wire.constants import ResponseCode

KIND = Kind.REVERSAL


def reversal(answer: Answer, session: Session, ctx: Context, now: dt.datetime) -> Flow:
    """The original is the transaction field 61 names (else the reversal's own STAN, in this batch): 25 if the
    journal has none; 12 if its state cannot be reversed (voided: undo the void first); 00 if it is already
    reversed or never posted. A ledger that does not answer gets the reversal by store-and-forward (00: the
    host owns it now); only the ledger's 00 marks the original reversed."""
    request = answer.request
    pan = card_number(request)
    if pan is None or "11" not in request:
        return (yield from refuse(answer, ResponseCode.FORMAT_ERROR, session, KIND))
    ref = request.field61  # a malformed 61 is ignored: the reversal's own STAN names the original
    batch, stan = (ref.batch, ref.stan) if ref is not None else (session.batch, request.fields["11"])
    original: JournalTxn | None = yield FindTxn(session.terminal_id, batch, stan)
    if original is None:
        return (yield from refuse(answer, ResponseCode.ORIGINAL_NOT_FOUND, session, KIND))
    if not can(original.status, TxnEvent.REVERSED):
        return (yield from refuse(answer, ResponseCode.INVALID_TRANSACTION, session, KIND))
    reversed_status = advance(original.status, TxnEvent.REVERSED)
    if reversed_status == original.status:  # already reversed, or never posted
        return (yield from refuse(answer, ResponseCode.APPROVED, session, KIND))
    rrn: str = yield NextRrn()
    acquirer_id = ctx.registry.acquirer_id
    to_ledger = ledger_request(
        LedgerOp.REVERSAL, request, pan=pan, rrn=rrn, acquirer_id=acquirer_id, now=now, original=original
    )
    mark_reversed = SetStatus(
        terminal_id=session.terminal_id, batch=batch, stan=stan, mti=original.mti, status=reversed_status
    )
    result = yield ask_host(ctx, session, request, to_ledger, with_pin=False)
    if isinstance(result, PeerFailure):
        yield QueueReversal(to_ledger)
        yield mark_reversed
        return (yield from refuse(answer, ResponseCode.APPROVED, session, KIND))  # queued: the host owns it now
    if result.response_code is ResponseCode.APPROVED:  # a 12 leaves the original as it is
        yield mark_reversed
    answer.fields["37"] = result.rrn
    return (yield from done(answer.code(result.response_code), session, KIND))
