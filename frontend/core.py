"""The front-end's transaction logic, sans-IO: one decoded POS request in, effects out, one answer back.

:func:`inbound` decodes a frame's body once, at the edge (:class:`wire.posmessage.PosMessage`); ``process(request,
ctx)`` is a generator: it yields :mod:`frontend.effects` (plain data) and receives their results; its return
value is the :class:`Reply`. The checks, in order, each with its response code (the rules live in
:mod:`frontend.flows`, one module per job):

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
8a. tracks encrypted under the session's TDK (53 = 2610000000000000) decrypted by the HSM (M2) before the PIN
   check reads the PVV — 30 when they do not decrypt to tracks (:mod:`frontend.flows.tdk`);
9. PIN (field 52) verified by the HSM against the PVV in track 2 — 55, the third failure of the day for a
   card and every try after it — 75, counted for the whole pool at the card's ledger (a wrong PIN is reported
   there, :mod:`frontend.flows.pin`); a PIN block the HSM cannot read — 99 (on-us cards only: an off-us PIN
   goes to its issuer, translated to the acquirer zone's ZPK);
10. the card's BIN in no range of the acquirer's nor the switch's (:mod:`frontend.routing`) — 14;
11. the ledger (on-us) or the scheme switch (off-us) decides; no answer in time — 98, and a reversal goes the
    same way by store-and-forward.

QR payments (22 = 032, field 59; :mod:`frontend.flows.qr`) take steps 1–7 the same way, then the wallet host
decides instead of the ledger (no answer in time — 98, and a reversal goes to the wallet by store-and-forward).
"""

from __future__ import annotations

import logging
from typing import Final

from core_ledger.api import MAX_PIN_FAILURES_PER_DAY
from frontend.effects import LoadSession, PeerFailure, VerifyMac, VerifyMacAndPin
from frontend.flows.answer import UNKNOWN_KIND, Answer, Context, Flow, Reply, done, malfunction_reply, refuse
from frontend.flows.checks import card_number, classify, is_request_mti
from frontend.flows.chip import script_results
from frontend.flows.faults import UNKNOWN_OUTCOME_CODES
from frontend.flows.financial import financial
from frontend.flows.ledger import reversal_of
from frontend.flows.mpos import MposRead, is_mpos, open_mpos, use_ksn
from frontend.flows.pin import (
    FINANCIAL_KINDS,
    PinCheck,
    PinState,
    pin_verification,
    settle_pin,
)
from frontend.flows.qr import qr, qr_reversal
from frontend.flows.reversal import reversal
from frontend.flows.settlement import batch_upload, settlement
from frontend.flows.sign_on import sign_off_or_echo, sign_on
from frontend.flows.tdk import has_encrypted_tracks, open_tracks
from frontend.messages import QR_KINDS, Kind
from frontend.records import Session
from frontend.routing import Route, route_of
from hsm_sim.client import PinVerification
from wire.codec import pos_body_mac, pos_mac_block
from wire.constants import ResponseCode
from wire.errors import WireError
from wire.field59 import ENTRY_QR
from wire.header import PROCESSING_SIGN_ON_AGAIN, PosHeader
from wire.posframe import PosFrame
from wire.posmessage import PosMessage

log = logging.getLogger("acqsim.frontend")

__all__ = [
    "MAX_PIN_FAILURES_PER_DAY",
    "UNKNOWN_OUTCOME_CODES",
    "Context",
    "Reply",
    "answer_header",
    "inbound",
    "malfunction_reply",
    "process",
    "reversal_of",
]

#: Kinds whose card may come in an encrypted track (MPOS DUKPT, or under the TDK): the HSM decrypts it.
_CARD_READ_KINDS: Final = frozenset({*FINANCIAL_KINDS, Kind.REVERSAL})
#: Kinds that need no session (nor a MAC): they start, end or test one.
_SESSIONLESS: Final = (Kind.SIGN_OFF, Kind.ECHO)


def inbound(frame: PosFrame) -> PosMessage | Reply:
    """The frame's body decoded once, at the edge; or, when it does not decode, the reply that drops it."""
    try:
        return PosMessage.decode(frame.body)
    except WireError as exc:  # its text names the field and offset, never a value
        return Reply(body=None, note=f"undecodable body: {exc}")


def process(request: PosMessage, ctx: Context) -> Flow:
    if not is_request_mti(request.mti):
        return Reply(body=None, note=f"MTI {request.mti} is not a request: dropped (an answer is never answered)")
    now = ctx.clock()
    answer = Answer(request, now, ctx.registry.acquirer_id)
    kind = classify(request)
    if isinstance(kind, ResponseCode):
        return (yield from refuse(answer, kind, None, UNKNOWN_KIND))
    terminal = ctx.registry.terminals.get(request.get("41"))
    if terminal is None:
        return (yield from refuse(answer, ResponseCode.NOT_PERMITTED_TO_TERMINAL, None, kind))
    if terminal.merchant_id != request.get("42") or terminal.merchant_id not in ctx.registry.merchants:
        return (yield from refuse(answer, ResponseCode.INVALID_MERCHANT, None, kind))
    if kind is Kind.SIGN_ON:
        return (yield from sign_on(answer, terminal.terminal_id, terminal.tmk_under_lmk))
    session: Session | None = yield LoadSession(terminal.terminal_id)
    if kind in _SESSIONLESS:
        return (yield from sign_off_or_echo(answer, kind, terminal.terminal_id))
    assert request.field60 is not None  # classify answered 30 without it
    if session is None or session.batch != request.field60.batch:
        code = ResponseCode.BATCH_MISMATCH
        return (yield from done(answer.code(code), None, kind, header_request=PROCESSING_SIGN_ON_AGAIN))

    mac = pos_body_mac(request.body)
    if mac is None:
        return (yield from refuse(answer, ResponseCode.MAC_FAILED, session, kind))
    if has_encrypted_tracks(request) and kind in _CARD_READ_KINDS:
        opened_tracks = yield from open_tracks(request, session)
        if isinstance(opened_tracks, ResponseCode):
            return (yield from refuse(answer, opened_tracks, session, kind))
        request = answer.request = opened_tracks  # tracks in clear, in memory only; the MAC covers what was sent
    mpos: MposRead | None = None
    if is_mpos(request) and kind in _CARD_READ_KINDS:
        opened = yield from open_mpos(request, ctx.registry)
        if isinstance(opened, ResponseCode):
            return (yield from refuse(answer, opened, session, kind))
        request, mpos = opened
        answer.request = request  # its track 2 in clear, in memory only; the answer carries no card number
    verify_mac = VerifyMac(session.mak, pos_mac_block(request.body), mac)
    # A financial request's PIN is verified in the same HSM round trip as its MAC; the result is used only
    # where the PIN check comes in the flow (after the MAC, the format checks and the journal).
    dukpt = (mpos.bdk_under_lmk, mpos.ksn) if mpos is not None else None
    pan = card_number(request)
    if pan is not None and route_of(ctx.scheme, pan) is not Route.ON_US:
        pin_check = PinCheck(PinState.NOT_ENTERED)  # off-us: the issuer verifies it (or an unknown BIN: 14)
    else:
        pin_check = yield from pin_verification(kind, session, request, ctx.registry.pvk_under_lmk, now, dukpt)
    pin_outcome: PinVerification | PeerFailure | None = None
    if pin_check.command is None:
        verified = yield verify_mac
    else:
        verified, pin_outcome = yield VerifyMacAndPin(verify_mac, pin_check.command)
    pin_code = yield from settle_pin(pin_check, verified is True, pin_outcome)
    if isinstance(verified, PeerFailure):
        return (yield from refuse(answer, ResponseCode.SYSTEM_MALFUNCTION, session, kind))
    if not verified:
        code = ResponseCode.MAC_FAILED
        return (yield from done(answer.code(code), session, kind, header_request=PROCESSING_SIGN_ON_AGAIN))

    if kind is Kind.SETTLEMENT:
        return (yield from settlement(answer, session))
    if kind in (Kind.BATCH_UPLOAD, Kind.BATCH_UPLOAD_END):
        return (yield from batch_upload(answer, session, kind))
    if kind in QR_KINDS:
        return (yield from qr(answer, session, kind, now))
    if kind is Kind.REVERSAL and request.get("22") == ENTRY_QR:
        return (yield from qr_reversal(answer, session))
    if kind is Kind.REVERSAL:
        return (yield from reversal(answer, session, ctx, now))
    if kind is Kind.SCRIPT_ADVICE:
        return (yield from script_advice(answer, session))
    if mpos is not None:
        replayed = yield from use_ksn(request, mpos)
        if replayed is not None:
            return (yield from refuse(answer, replayed, session, kind))
    return (yield from financial(answer, session, kind, ctx, now, pin_code))


def script_advice(answer: Answer, session: Session) -> Flow:
    """0620 / 951: the card's issuer-script results, logged (never a card value) and acknowledged."""
    results = script_results(answer.request)
    if isinstance(results, ResponseCode):
        return (yield from refuse(answer, results, session, Kind.SCRIPT_ADVICE))
    request = answer.request
    log.info("terminal %s STAN %s: issuer script results %s", request.terminal_id, request.stan, results)
    return (yield from done(answer.code(ResponseCode.APPROVED), session, Kind.SCRIPT_ADVICE))


def answer_header(frame: PosFrame, reply: Reply) -> PosHeader:
    return frame.header.with_processing_request(reply.header_request)
