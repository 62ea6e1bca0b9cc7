"""The front-end's transaction logic, sans-IO: one POS frame in, effects out, one answer back.

``process(frame, ctx)`` is a generator: it yields :mod:`frontend.effects` and receives their results; its
return value is the :class:`Reply`. The checks, in order, each with its response code:

1. body decodes (else no answer can be built: the frame is dropped and logged with field and offset), and its
   MTI is a request (an answer's MTI — 0210, 0410, 0810 … — cannot be answered: dropped and logged);
2. message type known (MTI/3/60.1/60.3) — 12 for a known MTI with an unknown type, 40 for an unknown MTI, 30
   for a missing or malformed field 60;
3. terminal registered (58) and its merchant registered and matching (03);
4. network management and settlement need no session; everything else needs a session whose batch matches
   60.2 — else 77 with the header's processing request set to 3 ("sign on again");
5. MAC (field 64) verified by the HSM — A0;
6. mandatory fields per type — 30;
7. duplicate (terminal, batch, STAN, MTI) — 94;
8. original (61) found in this batch's journal for void/refund/cancel/completion — 25;
9. PIN (field 52) verified by the HSM against the PVV in track 2 — 55, the third failure of the day for a
   card and every try after it — 75; a PIN block the HSM cannot read — 99;
10. the ledger decides; no answer in time — 98, and a reversal goes to the ledger by store-and-forward.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Callable, Generator
from typing import Any, Final

from core_ledger.api import LedgerAnswer, LedgerOp, LedgerRequest, OriginalRef
from frontend.effects import (
    AskLedger,
    Effect,
    GenerateMac,
    GenerateWorkingKeys,
    JournalCall,
    JournalRead,
    PeerFailure,
    QueueReversal,
    VerifyMac,
    VerifyMacAndPin,
    VerifyPin,
)
from frontend.journal import Journal, JournalTxn, Session
from frontend.lifecycle import TxnEvent, TxnState, advance, can
from frontend.messages import EXTRA_REQUIRED, FINANCIAL, FINANCIAL_REQUIRED, LEDGER_OPS, MANAGEMENT, ORIGINALS, Kind
from frontend.registry import Registry
from hsm_sim.client import PinVerification
from wire.codec import decode_pos_body, encode_pos_body, pos_body_mac, pos_mac_block
from wire.constants import (
    CARD_ORG_CUP,
    Mti,
    ResponseCode,
    response_mti,
)
from wire.errors import WireError
from wire.fields import (
    AMOUNT_TYPE_AVAILABLE,
    AdditionalAmount,
    Field60,
    Field61,
    SettlementTotals,
    SignOnKeys,
)
from wire.header import PROCESSING_NONE, PROCESSING_SIGN_ON_AGAIN, PosHeader
from wire.masking import mask_pan
from wire.posframe import PosFrame

RC = ResponseCode
MAX_PIN_FAILURES_PER_DAY: Final = 3
KCV_HEX: Final = 8  # PROTOCOL.md §1: KCV = first 4 bytes
#: Ledger answers after which a posting may or may not have landed (its commit failed or was cut short); to a
#: store-and-forward reversal, the answers worth trying again (any other refusal is final: a dead letter).
UNKNOWN_OUTCOME_CODES: Final = frozenset({ResponseCode.SYSTEM_MALFUNCTION, ResponseCode.CORE_TIMEOUT})
#: What a malformed field or sub-field raises (the sub-field parsers raise MessageDecodeError, a WireError).
BAD_FIELD: Final = (WireError, ValueError)
#: A PAN is 12 to 19 digits (ISO/IEC 7812); anything else in field 2 or track 2 is a format error.
PAN_DIGITS: Final = range(12, 20)
#: The kinds that go through ``_financial`` (and so may carry a PIN to verify).
FINANCIAL_KINDS: Final = frozenset(FINANCIAL.values())
#: Fields echoed from request to answer.
ECHOED: Final = ("2", "3", "4", "11", "14", "22", "23", "25", "41", "42", "48", "49", "60", "61")

Flow = Generator[Effect, Any, "Reply"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    body: bytes | None  # None: nothing can be answered (undecodable body)
    header_request: int = PROCESSING_NONE
    note: str = ""  # one log/trace line: kind, terminal, STAN, response code — never a PAN or key
    correlation_id: str | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Context:
    registry: Registry
    clock: Callable[[], dt.datetime] = dt.datetime.now  # the terminal's local time (fields 12/13)


def is_request_mti(mti: str) -> bool:
    """A request or advice MTI (third digit even); answers (0210, 0410, …) are never requests."""
    return len(mti) == 4 and mti.isdigit() and int(mti[2]) % 2 == 0


def classify(fields: dict[str, str]) -> Kind | ResponseCode:
    mti = fields.get("t", "")
    if mti not in set(Mti):
        return RC.FUNCTION_NOT_SUPPORTED
    try:
        f60 = Field60.parse(fields.get("60", ""))
    except BAD_FIELD:
        return RC.FORMAT_ERROR
    if mti == Mti.REVERSAL:
        return Kind.REVERSAL
    if mti in (Mti.NETWORK_REQUEST, Mti.NETWORK_ADVICE, Mti.SETTLEMENT, Mti.BATCH_UPLOAD):
        return MANAGEMENT.get((mti, f60.network_code), RC.INVALID_TRANSACTION)
    if mti in (Mti.FINANCIAL_REQUEST, Mti.AUTH_REQUEST, Mti.ADVICE):
        return FINANCIAL.get((mti, fields.get("3", ""), f60.txn_type), RC.INVALID_TRANSACTION)
    return RC.FUNCTION_NOT_SUPPORTED


def card_number(fields: dict[str, str]) -> str | None:
    """The PAN from field 2, else from track 2; ``None`` when neither holds a well-formed one."""
    if "2" in fields:
        pan = fields["2"]
    elif "35" in fields:
        pan = fields["35"].split("=")[0]
    else:
        return None
    return pan if pan.isdigit() and len(pan) in PAN_DIGITS else None


def track_pvv(fields: dict[str, str]) -> tuple[str, str] | None:
    """PVKI and PVV from track 2: ``PAN=YYMM SSS K VVVV …`` (PROTOCOL.md §1)."""
    track = fields.get("35", "")
    _, sep, rest = track.partition("=")
    if not sep or len(rest) < 12 or not rest[:12].isdigit():
        return None
    return rest[7], rest[8:12]


class _Answer:
    """Builds the answer body from the request's fields."""

    def __init__(self, fields: dict[str, str], now: dt.datetime, acquirer_id: str) -> None:
        self.request = fields
        self.fields: dict[str, str] = {k: fields[k] for k in ECHOED if k in fields}
        self.fields["t"] = response_mti(fields["t"])
        self.fields["13"], self.fields["12"] = _local_date_time(fields, now)
        self.fields["15"] = now.strftime("%m%d")
        self.fields["32"] = acquirer_id
        if "2" not in self.fields and (pan := card_number(fields)):
            self.fields["2"] = pan

    def code(self, code: ResponseCode) -> _Answer:
        self.fields["39"] = code.value
        return self

    @property
    def response_code(self) -> str:
        return self.fields.get("39", "")


def _mac_answer(answer: _Answer, session: Session | None) -> Flow:
    """Encode the answer, with a MAC from the HSM when the terminal has a MAK."""
    if session is None:
        return Reply(body=encode_pos_body(answer.fields))
    placeholder = encode_pos_body({**answer.fields, "64": "00" * 8})
    mac = yield GenerateMac(session.mak, pos_mac_block(placeholder))
    if isinstance(mac, PeerFailure):
        answer.fields.pop("64", None)
        answer.code(RC.SYSTEM_MALFUNCTION)
        return Reply(body=encode_pos_body(answer.fields))
    return Reply(body=placeholder[:-8] + mac)


def _done(answer: _Answer, session: Session | None, kind: Kind | str, *, header_request: int = PROCESSING_NONE) -> Flow:
    reply = yield from _mac_answer(answer, session)
    terminal = answer.request.get("41", "?")
    stan = answer.request.get("11", "")
    note = f"{kind} terminal {terminal} STAN {stan} → {answer.response_code}"
    return Reply(
        body=reply.body,
        header_request=header_request,
        note=note,
        correlation_id=f"{terminal}-{stan}" if stan else None,
    )


def malfunction_reply(frame: PosFrame, ctx: Context, why: str) -> Reply:
    """96 for a request the front-end itself could not carry through (its journal failed, or a fault of its
    own): echoed fields, no MAC (the MAC would need the HSM, and the answer says the system failed anyway).
    A body that cannot be answered at all gives no answer."""
    try:
        fields = decode_pos_body(frame.body)
        if not is_request_mti(fields["t"]):
            return Reply(body=None, note=f"not a request ({why})")
        answer = _Answer(fields, ctx.clock(), ctx.registry.acquirer_id).code(RC.SYSTEM_MALFUNCTION)
        body = encode_pos_body(answer.fields)
    except BAD_FIELD:
        return Reply(body=None, note=f"no answer can be built ({why})")
    note = f"terminal {fields.get('41', '?')} STAN {fields.get('11', '')} → 96: {why}"
    return Reply(body=body, note=note)


def process(frame: PosFrame, ctx: Context) -> Flow:
    try:
        fields = decode_pos_body(frame.body)
    except WireError as exc:  # its text names the field and offset, never a value
        return Reply(body=None, note=f"undecodable body: {exc}")
    if not is_request_mti(fields["t"]):
        return Reply(body=None, note=f"MTI {fields['t']} is not a request: dropped (an answer is never answered)")
    now = ctx.clock()
    answer = _Answer(fields, now, ctx.registry.acquirer_id)
    kind = classify(fields)
    if isinstance(kind, ResponseCode):
        return (yield from _done(answer.code(kind), None, "unknown"))
    terminal = ctx.registry.terminals.get(fields.get("41", ""))
    if terminal is None:
        return (yield from _done(answer.code(RC.NOT_PERMITTED_TO_TERMINAL), None, kind))
    if terminal.merchant_id != fields.get("42") or terminal.merchant_id not in ctx.registry.merchants:
        return (yield from _done(answer.code(RC.INVALID_MERCHANT), None, kind))

    if kind is Kind.SIGN_ON:
        return (yield from _sign_on(answer, terminal.terminal_id, terminal.tmk_under_lmk, fields))
    session: Session | None = yield JournalRead(lambda j: j.session(terminal.terminal_id))
    if kind in (Kind.SIGN_OFF, Kind.ECHO):
        if kind is Kind.SIGN_OFF:
            yield JournalCall(lambda j: j.drop_session(terminal.terminal_id))
        return (yield from _done(answer.code(RC.APPROVED), None, kind))
    f60 = Field60.parse(fields["60"])
    if session is None or session.batch != f60.batch:
        code = RC.BATCH_MISMATCH
        return (yield from _done(answer.code(code), None, kind, header_request=PROCESSING_SIGN_ON_AGAIN))

    mac = pos_body_mac(frame.body)
    if mac is None:
        return (yield from _done(answer.code(RC.MAC_FAILED), session, kind))
    verify_mac = VerifyMac(session.mak, pos_mac_block(frame.body), mac)
    # A financial request's PIN is verified in the same HSM round trip as its MAC; the result is used only
    # where the PIN check comes in the flow (after the MAC, the format checks and the journal).
    pin_check = yield from _pin_verification(kind, session, fields, ctx, now)
    pin_outcome: PinVerification | PeerFailure | None = None
    if pin_check.command is None:
        verified = yield verify_mac
    else:
        verified, pin_outcome = yield VerifyMacAndPin(verify_mac, pin_check.command)
    pin_code = yield from _settle_pin(pin_check, verified is True, pin_outcome)
    if isinstance(verified, PeerFailure):
        return (yield from _done(answer.code(RC.SYSTEM_MALFUNCTION), session, kind))
    if not verified:
        return (yield from _done(answer.code(RC.MAC_FAILED), session, kind, header_request=PROCESSING_SIGN_ON_AGAIN))

    if kind is Kind.SETTLEMENT:
        return (yield from _settlement(answer, session, fields))
    if kind is Kind.BATCH_UPLOAD:
        return (yield from _done(answer.code(RC.APPROVED), session, kind))
    if kind is Kind.BATCH_UPLOAD_END:
        reply = yield from _done(answer.code(RC.APPROVED), session, kind)
        yield from _close_batch(session)  # after an unbalanced settlement, the upload closes the batch
        return reply
    if kind is Kind.REVERSAL:
        return (yield from _reversal(answer, session, fields, ctx, now))
    return (yield from _financial(answer, session, fields, kind, ctx, now, pin_code))


def _sign_on(answer: _Answer, terminal_id: str, tmk_under_lmk: str, fields: dict[str, str]) -> Flow:
    keys = yield GenerateWorkingKeys(tmk_under_lmk)
    if isinstance(keys, PeerFailure):
        return (yield from _done(answer.code(RC.SYSTEM_MALFUNCTION), None, Kind.SIGN_ON))
    pik, mak = keys
    batch: str = yield JournalCall(lambda j: j.next_batch(terminal_id))
    yield JournalCall(
        lambda j: j.save_session(Session(terminal_id=terminal_id, pik=pik.under_lmk, mak=mak.under_lmk, batch=batch))
    )
    f60 = Field60.parse(fields.get("60", "00000000003"))
    answer.fields["60"] = dataclasses.replace(f60, batch=batch).encode()
    answer.fields["62"] = SignOnKeys(
        pik_under_tmk=pik.under_tmk, pik_kcv=pik.kcv[:KCV_HEX], mak_under_tmk=mak.under_tmk, mak_kcv=mak.kcv[:KCV_HEX]
    ).encode()
    answer.fields["39"] = RC.APPROVED.value
    return (yield from _done(answer, None, Kind.SIGN_ON))


def _close_batch(session: Session) -> Generator[Effect, Any, None]:
    """Settlement closes the batch on both sides; the next batch number is the current one plus one."""
    next_batch = f"{int(session.batch) % 999_999 + 1:06d}"
    yield JournalCall(lambda j: j.save_session(dataclasses.replace(session, batch=next_batch)))


def _settlement(answer: _Answer, session: Session, fields: dict[str, str]) -> Flow:
    try:
        claimed = SettlementTotals.parse(fields.get("48", ""))
    except BAD_FIELD:
        return (yield from _done(answer.code(RC.FORMAT_ERROR), session, Kind.SETTLEMENT))
    ours: SettlementTotals = yield JournalCall(lambda j: j.totals(session.terminal_id, session.batch))
    domestic = "1" if claimed.domestic.same_totals(ours.domestic) else "2"
    foreign = "1" if claimed.foreign.same_totals(ours.foreign) else "2"
    answer.fields["48"] = claimed.with_flags(domestic, foreign).encode()
    answer.fields["63"] = CARD_ORG_CUP
    if domestic == foreign == "1":
        yield from _close_batch(session)  # balanced: the terminal carries on with the next batch
    return (yield from _done(answer.code(RC.APPROVED), session, Kind.SETTLEMENT))


def _local_date_time(fields: dict[str, str], now: dt.datetime) -> tuple[str, str]:
    """Fields 13 and 12 (MMDD, hhmmss) of the request, or the front-end's own clock where it sent none."""
    local_date = fields["13"] if "13" in fields else now.strftime("%m%d")
    local_time = fields["12"] if "12" in fields else now.strftime("%H%M%S")
    return local_date, local_time


def _ledger_request(
    op: LedgerOp,
    fields: dict[str, str],
    pan: str,
    rrn: str,
    ctx: Context,
    now: dt.datetime,
    original: JournalTxn | None,
    original_mti: str | None = None,
) -> LedgerRequest:
    local_date, local_time = _local_date_time(fields, now)
    ref = None
    if original is not None:
        ref = OriginalRef(
            mti=original_mti or original.mti,
            stan=original.stan,
            local_date=original.local_date,
            local_time=original.local_time,
            acquirer_id=ctx.registry.acquirer_id,
            rrn=original.rrn,  # the original's own transaction id: what the ledger finds it by
        )
    return LedgerRequest(
        op=op,
        acquirer_id=ctx.registry.acquirer_id,
        terminal_id=fields["41"],
        merchant_id=fields["42"],
        stan=fields["11"],
        local_time=local_time,
        local_date=local_date,
        transmission=local_date + local_time,
        pan=pan,
        rrn=rrn,
        amount=int(fields.get("4", "0")),
        currency=fields.get("49", "156"),
        expiry=fields.get("14"),
        pos_entry_mode=fields.get("22"),
        condition_code=fields.get("25", "00"),
        auth_code=fields.get("38"),
        original=ref,
        target_pan=fields.get("48"),
    )


def reversal_of(request: LedgerRequest, mti: str, rrn: str) -> LedgerRequest:
    """The ledger reversal that undoes ``request`` (whose POS message type was ``mti``) whatever became of it
    (store-and-forward after an unknown outcome): a transaction of its own (``rrn``, fresh from the journal)
    for the same card and amount, naming the request as its original by STAN and RRN."""
    return dataclasses.replace(
        request,
        op=LedgerOp.REVERSAL,
        rrn=rrn,
        original=OriginalRef(
            mti=mti,
            stan=request.stan,
            local_date=request.local_date,
            local_time=request.local_time,
            acquirer_id=request.acquirer_id,
            rrn=request.rrn,
        ),
    )


def _apply_ledger_answer(answer: _Answer, result: LedgerAnswer) -> None:
    answer.code(result.response_code)
    answer.fields["37"] = result.rrn
    if result.auth_code:
        answer.fields["38"] = result.auth_code
    if result.available is not None and answer.request.get("3") == "310000":
        answer.fields["54"] = AdditionalAmount(
            amount=result.available, amount_type=AMOUNT_TYPE_AVAILABLE, currency=result.currency
        ).encode()


def _financial(
    answer: _Answer,
    session: Session,
    fields: dict[str, str],
    kind: Kind,
    ctx: Context,
    now: dt.datetime,
    pin_code: ResponseCode | None = None,
) -> Flow:
    pan = card_number(fields)
    required = FINANCIAL_REQUIRED + EXTRA_REQUIRED.get(kind, ())
    pin_entered = fields.get("22", "")[-1:] == "1"
    if pan is None or any(k not in fields for k in required) or (pin_entered and "52" not in fields):
        return (yield from _done(answer.code(RC.FORMAT_ERROR), session, kind))
    original: JournalTxn | None = None
    if kind in ORIGINALS:
        try:
            ref = Field61.parse(fields["61"])
        except BAD_FIELD:
            return (yield from _done(answer.code(RC.FORMAT_ERROR), session, kind))
        original = yield JournalCall(lambda j: j.find(session.terminal_id, ref.batch, ref.stan))
        if original is None or original.kind not in ORIGINALS[kind] or original.status != TxnState.APPROVED:
            return (yield from _done(answer.code(RC.ORIGINAL_NOT_FOUND), session, kind))

    local_date, local_time = _local_date_time(fields, now)
    # Durable before the ledger is asked: the row, and the ledger request itself (given its RRN there), so that
    # a restart after a crash can settle it (frontend/recovery.py).
    unnumbered = _ledger_request(LEDGER_OPS[kind], fields, pan, "", ctx, now, original)
    request: LedgerRequest | None = yield JournalCall(
        lambda j: j.record_request(
            terminal_id=session.terminal_id,
            batch=session.batch,
            stan=fields["11"],
            mti=fields["t"],
            kind=kind.value,
            pan_masked=mask_pan(pan),
            amount=int(fields.get("4", "0")),
            local_date=local_date,
            local_time=local_time,
            original_stan=original.stan if original else None,
            ledger_request=unnumbered,
        )
    )
    if request is None:
        return (yield from _done(answer.code(RC.DUPLICATE), session, kind))
    rrn = request.rrn

    def finish(code: str, auth: str | None, status: str) -> Callable[[Journal], None]:
        return lambda j: j.record_answer(
            session.terminal_id,
            session.batch,
            fields["11"],
            fields["t"],
            response_code=code,
            auth_code=auth,
            status=status,
        )

    if pin_entered and pin_code is not None:
        yield JournalCall(finish(pin_code.value, None, advance(TxnState.PENDING, TxnEvent.PIN_REJECTED)))
        return (yield from _done(answer.code(pin_code), session, kind))

    result = yield AskLedger(request)
    if isinstance(result, PeerFailure) or result.response_code in UNKNOWN_OUTCOME_CODES:
        # The ledger may or may not have posted: never guess. A reversal (store-and-forward) settles it either
        # way — it undoes a posting, or leaves a tombstone so that a late original is refused.
        code = RC.CORE_TIMEOUT if isinstance(result, PeerFailure) else result.response_code
        reversal_rrn: str = yield JournalCall(lambda j: j.next_rrn())
        yield QueueReversal(reversal_of(request, fields["t"], reversal_rrn))
        yield JournalCall(finish(code.value, None, advance(TxnState.PENDING, TxnEvent.OUTCOME_UNKNOWN)))
        answer.fields["37"] = rrn
        return (yield from _done(answer.code(code), session, kind))
    approved = result.response_code is RC.APPROVED
    event = TxnEvent.LEDGER_APPROVED if approved else TxnEvent.LEDGER_DECLINED
    yield JournalCall(finish(result.response_code.value, result.auth_code, advance(TxnState.PENDING, event)))
    if approved and original is not None and kind in (Kind.VOID, Kind.PREAUTH_CANCEL, Kind.PREAUTH_COMPLETION_VOID):
        yield JournalCall(
            lambda j: j.set_status(
                session.terminal_id,
                session.batch,
                original.stan,
                original.mti,
                advance(original.status, TxnEvent.VOIDED),
            )
        )
    _apply_ledger_answer(answer, result)
    return (yield from _done(answer, session, kind))


class PinState(enum.Enum):
    NOT_ENTERED = "no PIN to check"
    NO_PVV = "a PIN, but no PVV on track 2 to check it against"
    EXHAUSTED = "the card has no tries left today"
    RESERVED = "a try reserved: the DC goes to the HSM"


@dataclasses.dataclass(frozen=True, slots=True)
class PinCheck:
    state: PinState
    pan: str = ""
    day: str = ""
    command: VerifyPin | None = None


def _pin_verification(
    kind: Kind, session: Session, fields: dict[str, str], ctx: Context, now: dt.datetime
) -> Generator[Effect, Any, PinCheck]:
    """Decide whether the entered PIN goes to the HSM, and if so reserve one of the card's tries for it.

    The reservation is checked and taken in one step, in memory (``JournalRead`` runs inline on the event
    loop, so no other transaction runs between the check and the take): concurrent wrong PINs for one card can
    never put more than ``MAX_PIN_FAILURES_PER_DAY`` DCs in front of the HSM. :func:`_settle_pin` gives the
    try back, or turns it into a durable failure."""
    pan = card_number(fields)
    pin_entered = fields.get("22", "")[-1:] == "1" and "52" in fields
    if kind not in FINANCIAL_KINDS or not pin_entered or pan is None:
        return PinCheck(PinState.NOT_ENTERED)
    pvv = track_pvv(fields)
    day = now.strftime("%Y%m%d")
    if pvv is None:
        return PinCheck(PinState.NO_PVV, pan, day)
    try:
        pin_block = bytes.fromhex(fields["52"])
    except ValueError:
        return PinCheck(PinState.NOT_ENTERED)  # the format check answers 30
    reserved: bool = yield JournalRead(lambda j: j.reserve_pin_try(pan, day, MAX_PIN_FAILURES_PER_DAY))
    if not reserved:
        return PinCheck(PinState.EXHAUSTED, pan, day)
    command = VerifyPin(session.pik, ctx.registry.pvk_under_lmk, pin_block, pan, *pvv)
    return PinCheck(PinState.RESERVED, pan, day, command)


def _settle_pin(
    check: PinCheck, mac_verified: bool, outcome: PinVerification | PeerFailure | None
) -> Generator[Effect, Any, ResponseCode | None]:
    """The PIN decision, taken as soon as the HSM has answered (before any other check, so the reserved try is
    settled on every path): ``None`` to go on, else the code to answer once the request is journaled. A wrong
    PIN is a failure only if the message's MAC verified (an untrusted message spends no try)."""
    if check.state is PinState.NOT_ENTERED:
        return None
    if check.state is PinState.NO_PVV:
        return RC.FORMAT_ERROR
    if check.state is PinState.EXHAUSTED:
        return RC.PIN_TRIES_EXCEEDED
    pan, day = check.pan, check.day
    if outcome is PinVerification.WRONG_PIN and mac_verified:
        failures: int = yield JournalCall(lambda j: j.add_pin_failure(pan, day, reserved=True))
        return RC.PIN_TRIES_EXCEEDED if failures >= MAX_PIN_FAILURES_PER_DAY else RC.INCORRECT_PIN
    yield JournalRead(lambda j: j.release_pin_try(pan, day))
    if isinstance(outcome, PeerFailure) or outcome is None:
        return RC.SYSTEM_MALFUNCTION
    if outcome is PinVerification.TRIES_EXCEEDED:  # the HSM's own limit; a bad PIN block is a wrong PIN
        return RC.PIN_TRIES_EXCEEDED
    return None


def _reversal(answer: _Answer, session: Session, fields: dict[str, str], ctx: Context, now: dt.datetime) -> Flow:
    pan = card_number(fields)
    if pan is None or "11" not in fields:
        return (yield from _done(answer.code(RC.FORMAT_ERROR), session, Kind.REVERSAL))
    stan = fields["11"]
    batch = session.batch
    if "61" in fields:
        try:
            ref = Field61.parse(fields["61"])
            batch, stan = ref.batch, ref.stan
        except BAD_FIELD:
            pass
    original: JournalTxn | None = yield JournalCall(lambda j: j.find(session.terminal_id, batch, stan))
    if original is None:
        return (yield from _done(answer.code(RC.ORIGINAL_NOT_FOUND), session, Kind.REVERSAL))
    if not can(original.status, TxnEvent.REVERSED):  # e.g. voided: undo the void first
        return (yield from _done(answer.code(RC.INVALID_TRANSACTION), session, Kind.REVERSAL))
    if advance(original.status, TxnEvent.REVERSED) == original.status:  # already reversed, or never posted
        return (yield from _done(answer.code(RC.APPROVED), session, Kind.REVERSAL))
    rrn: str = yield JournalCall(lambda j: j.next_rrn())
    request = _ledger_request(LedgerOp.REVERSAL, fields, pan, rrn, ctx, now, original)
    result = yield AskLedger(request)
    if isinstance(result, PeerFailure):
        yield QueueReversal(request)
        yield JournalCall(
            lambda j: j.set_status(
                session.terminal_id, batch, stan, original.mti, advance(original.status, TxnEvent.REVERSED)
            )
        )
        return (yield from _done(answer.code(RC.APPROVED), session, Kind.REVERSAL))  # queued: the host owns it now
    if result.response_code is RC.APPROVED:  # only 00 means the ledger undid it; a 12 leaves the original as it is
        yield JournalCall(
            lambda j: j.set_status(
                session.terminal_id, batch, stan, original.mti, advance(original.status, TxnEvent.REVERSED)
            )
        )
    answer.fields["37"] = result.rrn
    return (yield from _done(answer.code(result.response_code), session, Kind.REVERSAL))


def answer_header(frame: PosFrame, reply: Reply) -> PosHeader:
    return frame.header.with_processing_request(reply.header_request)
