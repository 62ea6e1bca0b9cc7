"""The issuer host's rules, sans-IO: what a switch-link request asks of the issuer's ledger, and its answer.

The issuer's ledger is an ordinary ``core_ledger`` (its own data directory): the request becomes a
:class:`core_ledger.api.LedgerRequest` whose acquirer id is field 32 (the acquiring institution) and whose RRN is
field 37, so the ledger's idempotency key is the transaction itself, as the clearing file names it. A request
whose operation the message set does not have answers 40; one without its mandatory fields 30; one for another
issuer (field 100) 14. A PIN block (52, under the zone's ZPK) is verified before the ledger sees the request,
against the PVV in track 2 (35): wrong PIN 55, tries exceeded 75, no track to verify against 55.

A stand-in advice (0120, answered 0130) is the switch telling the issuer what it approved in its place: the
scheme guaranteed the merchant, so the issuer's ledger posts it *forced* (``LedgerRequest.forced``: whatever the
balance, limits or card status say), as the operation of the original MTI in its field 90 (a purchase,
pre-authorisation or completion, else 40), with no PIN check, the switch's auth code (38) and without 90 in the
ledger request, so its key and content are the original's and an issuer that did see the original posts
nothing twice (the ledger answers a repeat with its first answer).
"""

from __future__ import annotations

import dataclasses
from typing import Final

from core_ledger.api import FORCEABLE_OPS, LedgerAnswer, LedgerRequest, OriginalRef, op_for_route
from hsm_sim.client import PinVerification
from wire.constants import ConditionCode, Mti, ResponseCode, response_mti
from wire.fields import track2_pvv

Fields = dict[str, str]
RC = ResponseCode

MANDATORY: Final = ("2", "3", "4", "11", "12", "13", "32", "37", "41", "100")
ECHOED: Final = ("2", "3", "4", "7", "11", "12", "13", "25", "32", "33", "37", "41", "42", "49", "100")
PIN_VERDICT_CODES: Final = {
    PinVerification.OK: RC.APPROVED,
    PinVerification.WRONG_PIN: RC.INCORRECT_PIN,
    PinVerification.TRIES_EXCEEDED: RC.PIN_TRIES_EXCEEDED,
}
#: Field 90: original MTI n4 ‖ STAN n6 ‖ MMDDhhmmss n10 ‖ acquirer n11 ‖ forwarding n11.
ORIGINAL_DATA_LEN: Final = 42


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class PinCheck:
    """Verify the PIN block against the PVV before anything else (the shell asks the issuer's HSM: EC)."""

    pin_block: bytes = dataclasses.field(repr=False)
    pan: str = dataclasses.field(repr=False)
    pvki: str = dataclasses.field(repr=False)
    pvv: str = dataclasses.field(repr=False)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Accepted:
    request: LedgerRequest
    pin: PinCheck | None


def _original(fields: Fields) -> OriginalRef | None:
    value = fields.get("90", "")
    if len(value) != ORIGINAL_DATA_LEN or not value.isdigit():
        return None
    return OriginalRef(
        mti=value[0:4],
        stan=value[4:10],
        local_date=value[10:14],
        local_time=value[14:20],
        acquirer_id=fields["32"],
        # a reversal carries its original's RRN in 37 (the front-end's practice): the ledger finds it by that
        rrn=fields["37"] if fields.get("t") == Mti.REVERSAL else "",
    )


def accept(fields: Fields, *, issuer_id: str) -> Accepted | ResponseCode:
    """The ledger request (and PIN check) for a switch-link request, or the code to answer it with."""
    advice = fields.get("t") == Mti.STAND_IN_ADVICE
    route_mti = fields.get("90", "")[:4] if advice else fields.get("t", "")
    op = op_for_route(route_mti, fields.get("3", ""), fields.get("25", ConditionCode.NORMAL))
    if op is None or (advice and op not in FORCEABLE_OPS):
        return RC.FUNCTION_NOT_SUPPORTED
    if any(not fields.get(key, "").strip() for key in MANDATORY) or not fields["4"].isdigit():
        return RC.FORMAT_ERROR
    if fields["100"] != issuer_id:
        return RC.INVALID_CARD
    request = LedgerRequest(
        op=op,
        acquirer_id=fields["32"],
        terminal_id=fields["41"],
        merchant_id=fields.get("42", ""),
        stan=fields["11"],
        local_time=fields["12"],
        local_date=fields["13"],
        transmission=fields.get("7", ""),
        pan=fields["2"],
        rrn=fields["37"],
        amount=int(fields["4"]),
        currency=fields.get("49", "156"),
        expiry=fields.get("14"),
        pos_entry_mode=fields.get("22"),
        condition_code=fields.get("25", ConditionCode.NORMAL),
        auth_code=fields.get("38"),
        original=None if advice else _original(fields),
        forced=advice,
    )
    pin = None
    if "52" in fields and not advice:
        pvv = track2_pvv(fields.get("35", ""))
        try:
            block = bytes.fromhex(fields["52"])
        except ValueError:
            return RC.PIN_FORMAT_ERROR
        if pvv is None:
            return RC.INCORRECT_PIN
        pin = PinCheck(pin_block=block, pan=fields["2"], pvki=pvv[0], pvv=pvv[1])
    return Accepted(request=request, pin=pin)


def answer_fields(request: Fields, code: ResponseCode, answer: LedgerAnswer | None = None) -> Fields:
    """The switch-link answer: the request's identifying fields, 38 when approved with a code, 39."""
    fields: Fields = {k: request[k] for k in ECHOED if k in request}
    try:
        fields["t"] = response_mti(request.get("t", ""))
    except ValueError:
        fields["t"] = Mti.FINANCIAL_RESPONSE
    fields["39"] = code.value
    if answer is not None and answer.approved and answer.auth_code:
        fields["38"] = answer.auth_code
    return fields
