"""PIN checks: whether the entered PIN goes to the HSM (one of the card's tries reserved for it), and what the
HSM's verdict means (PROTOCOL.md §1; 55 wrong PIN, 75 the third failure of the day and every try after it).

The card's failures are counted at its ledger, which every front-end of a pool shares (docs/frontend.md): a
wrong PIN is reported there (:func:`report_wrong_pin`) and the ledger answers 55 or 75; a right PIN costs no
extra round trip (the ledger declines the posting 75 when the card's tries are used up). This instance's own
count, in memory, only bounds the DCs it sends: at most ``MAX_PIN_FAILURES_PER_DAY`` per card per day."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import logging
from collections.abc import Generator
from typing import Any, Final

from core_ledger.api import MAX_PIN_FAILURES_PER_DAY, LedgerAnswer, LedgerOp, LedgerRequest
from frontend.effects import AddPinFailure, AskLedger, Effect, PeerFailure, ReleasePinTry, ReservePinTry, VerifyPin
from frontend.flows.answer import local_date_time
from frontend.flows.checks import card_number, pin_entered, track_pvv
from frontend.messages import FINANCIAL, Kind
from frontend.records import Session
from hsm_sim.client import PinVerification
from wire.constants import ResponseCode
from wire.localdate import business_date
from wire.posmessage import PosMessage

#: The kinds that go through the financial flow (and so may carry a PIN to verify).
FINANCIAL_KINDS: Final = frozenset(FINANCIAL.values())

log = logging.getLogger("acqsim.frontend")
#: What the card's ledger may answer a wrong-PIN report with; anything else leaves this instance's own verdict.
PIN_REPORT_CODES: Final = frozenset({ResponseCode.INCORRECT_PIN, ResponseCode.PIN_TRIES_EXCEEDED})


class PinState(enum.Enum):
    NOT_ENTERED = "no PIN to check"
    NO_PVV = "a PIN, but no PVV on track 2 to check it against"
    EXHAUSTED = "the card has no tries left today"
    RESERVED = "a try reserved: the DC goes to the HSM"


@dataclasses.dataclass(frozen=True, slots=True)
class PinCheck:
    state: PinState
    pan: str = dataclasses.field(default="", repr=False)
    day: str = ""
    command: VerifyPin | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class WrongPin:
    """The HSM said the PIN is wrong: the card's ledger counts it for the pool and answers the code.
    ``fallback`` (55 or 75) is what this instance's own count says, answered when the ledger cannot be asked."""

    fallback: ResponseCode


#: The PIN decision: ``None`` to go on, a code to answer, or a wrong PIN to report first.
PinVerdict = ResponseCode | WrongPin | None


def pin_verification(
    kind: Kind,
    session: Session,
    request: PosMessage,
    pvk_under_lmk: str,
    now: dt.datetime,
    dukpt: tuple[str, bytes] | None = None,
) -> Generator[Effect, Any, PinCheck]:
    """Decide whether the entered PIN goes to the HSM, and if so reserve one of the card's tries for it.

    The reservation is checked and taken in one step, in memory (``ReservePinTry`` is answered inline on the
    event loop, so no other transaction runs between the check and the take): concurrent wrong PINs for one
    card can never put more than ``MAX_PIN_FAILURES_PER_DAY`` DCs in front of the HSM. :func:`settle_pin`
    gives the try back, or turns it into a durable failure. ``dukpt`` (BDK under the LMK, KSN): an MPOS PIN
    block under the reader's DUKPT PIN key, verified with GQ instead of DC."""
    pan = card_number(request)
    if kind not in FINANCIAL_KINDS or not pin_entered(request) or "52" not in request or pan is None:
        return PinCheck(PinState.NOT_ENTERED)
    pvv = track_pvv(request)
    day = business_date(local_date_time(request, now)[0], now)  # the ledger's day for this request's tries
    if pvv is None:
        return PinCheck(PinState.NO_PVV, pan, day)
    try:
        pin_block = bytes.fromhex(request.fields["52"])
    except ValueError:
        return PinCheck(PinState.NOT_ENTERED)  # the format check answers 30
    reserved: bool = yield ReservePinTry(pan, day, MAX_PIN_FAILURES_PER_DAY)
    if not reserved:
        return PinCheck(PinState.EXHAUSTED, pan, day)
    if dukpt is not None:
        bdk, ksn = dukpt
        return PinCheck(PinState.RESERVED, pan, day, VerifyPin(bdk, pvk_under_lmk, pin_block, pan, *pvv, ksn=ksn))
    command = VerifyPin(session.pik, pvk_under_lmk, pin_block, pan, *pvv)
    return PinCheck(PinState.RESERVED, pan, day, command)


def settle_pin(
    check: PinCheck, mac_verified: bool, outcome: PinVerification | PeerFailure | None
) -> Generator[Effect, Any, PinVerdict]:
    """The PIN decision, taken as soon as the HSM has answered (before any other check, so the reserved try is
    settled on every path): ``None`` to go on, else the code to answer (or the wrong PIN to report) once the
    request is journaled. A wrong PIN is a failure only if the message's MAC verified (an untrusted message
    spends no try)."""
    if check.state is PinState.NOT_ENTERED:
        return None
    if check.state is PinState.NO_PVV:
        return ResponseCode.FORMAT_ERROR
    if check.state is PinState.EXHAUSTED:
        return ResponseCode.PIN_TRIES_EXCEEDED
    if outcome is PinVerification.WRONG_PIN and mac_verified:
        failures: int = yield AddPinFailure(check.pan, check.day)
        exhausted = failures >= MAX_PIN_FAILURES_PER_DAY
        return WrongPin(ResponseCode.PIN_TRIES_EXCEEDED if exhausted else ResponseCode.INCORRECT_PIN)
    yield ReleasePinTry(check.pan, check.day)
    if isinstance(outcome, PeerFailure) or outcome is None:
        return ResponseCode.SYSTEM_MALFUNCTION
    if outcome is PinVerification.TRIES_EXCEEDED:  # the HSM's own limit; a bad PIN block is a wrong PIN
        return ResponseCode.PIN_TRIES_EXCEEDED
    return None


def report_wrong_pin(asked: LedgerRequest, wrong: WrongPin) -> Generator[Effect, Any, ResponseCode]:
    """Report the wrong PIN of ``asked`` (the journaled ledger request, under its own RRN: a retried report
    counts once) to the card's ledger, which counts it for the pool and answers the code the terminal gets, 55
    or 75. A ledger that cannot be asked leaves this instance's own verdict (its count bounds the card here)."""
    report = dataclasses.replace(asked, op=LedgerOp.PIN_FAILURE, original=None, target_pan=None, auth_code=None)
    result: LedgerAnswer | PeerFailure = yield AskLedger(report)
    if isinstance(result, PeerFailure) or result.response_code not in PIN_REPORT_CODES:
        why = result if isinstance(result, PeerFailure) else f"answered {result.response_code}"
        log.warning("wrong PIN, RRN %s: not counted at the ledger (%s); answered %s", asked.rrn, why, wrong.fallback)
        return wrong.fallback
    return result.response_code
