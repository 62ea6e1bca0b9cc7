"""The financial flow (balance, purchase, void, refund, pre-authorisation and its follow-ups, transfer), in
named steps: format → original (61) → journal (duplicates) → PIN verdict → ledger → journal the answer (while
the HSM MACs it: the answer leaves once both are done)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Generator
from typing import Any, Final

from core_ledger.api import LedgerAnswer, LedgerRequest
from frontend.effects import (
    Effect,
    FindTxn,
    NextRrn,
    PeerFailure,
    QueueReversal,
    RecordAnswer,
    RecordRequest,
    SetStatus,
)
from frontend.flows.answer import Answer, Context, Flow, done, local_date_time, refuse
from frontend.flows.checks import card_number, well_formed_financial
from frontend.flows.chip import answer_chip, chip_data, verify_chip
from frontend.flows.faults import UNKNOWN_OUTCOME_CODES
from frontend.flows.ledger import NO_AMOUNT, apply_ledger_answer, ask_host, ledger_request, reversal_of
from frontend.flows.pin import PinVerdict, WrongPin, report_wrong_pin
from frontend.lifecycle import TxnEvent, TxnState, advance
from frontend.messages import LEDGER_OPS, ORIGINALS, Kind
from frontend.records import JournalTxn, Session
from frontend.routing import route_of
from wire.constants import ResponseCode
from wire.masking import mask_pan
from wire.posmessage import PosMessage

#: Kinds whose approval voids their original (a void, a pre-auth cancel, a completion void).
VOIDING_KINDS: Final = frozenset({Kind.VOID, Kind.PREAUTH_CANCEL, Kind.PREAUTH_COMPLETION_VOID})

_Original = Generator[Effect, Any, "JournalTxn | ResponseCode | None"]


def financial(
    answer: Answer, session: Session, kind: Kind, ctx: Context, now: dt.datetime, pin_code: PinVerdict
) -> Flow:
    """``pin_code``: the PIN verdict already taken (``None``: no PIN, or the right one; a wrong PIN is reported
    to the card's ledger, which answers its code, once the request is journaled). A chip request's ARQC
    and ATC are checked before anything is journaled (frontend/flows/chip.py), and its answer carries 91."""
    request = answer.request
    pan = card_number(request)
    if pan is None or not well_formed_financial(request, kind):
        return (yield from refuse(answer, ResponseCode.FORMAT_ERROR, session, kind))
    if route_of(ctx.scheme, pan) is None:  # in no BIN range of the acquirer's nor the switch's
        return (yield from refuse(answer, ResponseCode.INVALID_CARD, session, kind))
    chip = chip_data(request, pan)
    if isinstance(chip, ResponseCode):
        return (yield from refuse(answer, chip, session, kind))
    approval_arpc = b""
    if chip is not None and pin_code is None:
        checked = yield from verify_chip(request, chip, pan, ctx.registry)
        if isinstance(checked, ResponseCode):
            return (yield from refuse(answer, checked, session, kind))
        approval_arpc = checked
    original = yield from _find_original(request, session, kind)
    if isinstance(original, ResponseCode):
        return (yield from refuse(answer, original, session, kind))
    numbered = yield from _journal_request(request, session, kind, ctx, now, pan, original)
    if numbered is None:
        return (yield from refuse(answer, ResponseCode.DUPLICATE, session, kind))
    if pin_code is not None:
        code = (yield from report_wrong_pin(numbered, pin_code)) if isinstance(pin_code, WrongPin) else pin_code
        yield _record_answer(request, session, code, None, TxnEvent.PIN_REJECTED)
        return (yield from refuse(answer, code, session, kind))
    result = yield ask_host(ctx, session, request, numbered, with_pin=True)
    if isinstance(result, PeerFailure) or result.response_code in UNKNOWN_OUTCOME_CODES:
        yield from _reverse_unknown_outcome(request, session, numbered, result)
        answer.fields["37"] = numbered.rrn
        code = ResponseCode.CORE_TIMEOUT if isinstance(result, PeerFailure) else result.response_code
        return (yield from refuse(answer, code, session, kind))
    apply_ledger_answer(answer, result)
    if chip is not None:
        script = ctx.registry.scripts.get(pan)
        yield from answer_chip(answer, chip, pan, ctx.registry, script, approval_arpc)
    # the ledger's answer is journaled while the HSM MACs the answer: durable before the answer leaves
    journaled = _ledger_answer_records(request, session, kind, result, original)
    return (yield from done(answer, session, kind, journaled=journaled))


def _find_original(request: PosMessage, session: Session, kind: Kind) -> _Original:
    """The approved transaction of this batch that field 61 names (for the kinds that name one): 30 for a
    malformed 61, 25 when there is none of a kind this one may follow."""
    if kind not in ORIGINALS:
        return None
    ref = request.field61
    if ref is None:
        return ResponseCode.FORMAT_ERROR
    original: JournalTxn | None = yield FindTxn(session.terminal_id, ref.batch, ref.stan)
    if original is None or original.kind not in ORIGINALS[kind] or original.status != TxnState.APPROVED:
        return ResponseCode.ORIGINAL_NOT_FOUND
    return original


def _journal_request(
    request: PosMessage,
    session: Session,
    kind: Kind,
    ctx: Context,
    now: dt.datetime,
    pan: str,
    original: JournalTxn | None,
) -> Generator[Effect, Any, LedgerRequest | None]:
    """Durable before the ledger is asked: the row, and the ledger request itself (given its RRN there), so
    that a restart after a crash can settle it (frontend/recovery.py). ``None`` for a duplicate."""
    local_date, local_time = local_date_time(request, now)
    acquirer_id = ctx.registry.acquirer_id
    unnumbered = ledger_request(
        LEDGER_OPS[kind], request, pan=pan, rrn="", acquirer_id=acquirer_id, now=now, original=original
    )
    numbered: LedgerRequest | None = yield RecordRequest(
        terminal_id=session.terminal_id,
        batch=session.batch,
        stan=request.fields["11"],
        mti=request.mti,
        kind=kind.value,
        pan_masked=mask_pan(pan),
        amount=int(request.get("4", NO_AMOUNT)),
        local_date=local_date,
        local_time=local_time,
        original_stan=original.stan if original else None,
        ledger_request=unnumbered,
    )
    return numbered


def _record_answer(
    request: PosMessage, session: Session, code: ResponseCode, auth_code: str | None, event: TxnEvent
) -> RecordAnswer:
    return RecordAnswer(
        terminal_id=session.terminal_id,
        batch=session.batch,
        stan=request.fields["11"],
        mti=request.mti,
        response_code=code.value,
        auth_code=auth_code,
        status=advance(TxnState.PENDING, event),
    )


def _reverse_unknown_outcome(
    request: PosMessage, session: Session, asked: LedgerRequest, result: LedgerAnswer | PeerFailure
) -> Generator[Effect, Any, None]:
    """The ledger may or may not have posted: never guess. A reversal (store-and-forward) settles it either
    way — it undoes a posting, or leaves a tombstone so that a late original is refused."""
    code = ResponseCode.CORE_TIMEOUT if isinstance(result, PeerFailure) else result.response_code
    reversal_rrn: str = yield NextRrn()
    yield QueueReversal(reversal_of(asked, request.mti, reversal_rrn))
    yield _record_answer(request, session, code, None, TxnEvent.OUTCOME_UNKNOWN)


def _ledger_answer_records(
    request: PosMessage, session: Session, kind: Kind, result: LedgerAnswer, original: JournalTxn | None
) -> tuple[RecordAnswer] | tuple[RecordAnswer, SetStatus]:
    """The journal writes of the ledger's answer: its record; an approved void (cancel, completion void) also
    voids its original."""
    approved = result.response_code is ResponseCode.APPROVED
    event = TxnEvent.LEDGER_APPROVED if approved else TxnEvent.LEDGER_DECLINED
    record = _record_answer(request, session, result.response_code, result.auth_code, event)
    if approved and original is not None and kind in VOIDING_KINDS:
        voided = SetStatus(
            terminal_id=session.terminal_id,
            batch=session.batch,
            stan=original.stan,
            mti=original.mti,
            status=advance(original.status, TxnEvent.VOIDED),
        )
        return record, voided
    return (record,)
