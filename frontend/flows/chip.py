"""Chip requests (PROTOCOL.md §7): field 55 read and checked, the ARQC verified at the HSM before the ledger is
asked, the ATC checked against replay, and the answer's 55 — the ARPC with the answer code (91) and any issuer
script (72). Also the issuer-script result advice (0620).

Codes: a field 55 that does not parse (truncated, a repeated tag, a wrong length, a tag missing) → 30; an ARQC
that does not verify → 05; an ATC this card already used, or one further behind its highest than
:data:`ATC_WINDOW` → 94. Each refusal logs one line (terminal, STAN, masked card, why) and nothing posts.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Generator
from typing import Any, Final

from frontend.effects import CounterVerdict, Effect, GenerateArpc, PeerFailure, UseCounter, VerifyArqc
from frontend.flows.answer import Answer
from frontend.registry import Registry
from hsm_sim.client import ArqcCheck
from wire.constants import ResponseCode
from wire.errors import MessageDecodeError
from wire.icc import (
    ATC_TAG,
    REQUEST_REQUIRED,
    SCRIPT_ADVICE_REQUIRED,
    SCRIPT_RESULTS_TAG,
    IssuerAnswer,
    IssuerScript,
    arqc_input,
    parse_icc,
)
from wire.masking import mask_pan
from wire.posmessage import PosMessage

log = logging.getLogger("acqsim.frontend")

#: Field 22's first two digits for a card read by its chip: contact, contactless (PROTOCOL.md §7).
CHIP_ENTRY_MODES: Final = frozenset({"05", "07"})
#: ATCs remembered below the highest seen: a card's transactions may arrive a little out of order (two
#: terminals, an advice sent later), never twice.
ATC_WINDOW: Final = 32
ATC_SCOPE: Final = "atc"
ARQC_FAILED: Final = ResponseCode.DO_NOT_HONOUR
ATC_REPLAYED: Final = ResponseCode.DUPLICATE
#: The id the front-end gives the issuer scripts it sends (9F18).
SCRIPT_ID: Final = bytes.fromhex("00000001")


@dataclasses.dataclass(frozen=True, slots=True)
class ChipData:
    """A chip request's field 55 as data objects, and its PAN sequence number (field 23)."""

    values: dict[str, bytes] = dataclasses.field(repr=False)
    psn: str


def _where(request: PosMessage, pan: str) -> str:
    return f"terminal {request.terminal_id} STAN {request.stan} card {mask_pan(pan)}"


def chip_data(request: PosMessage, pan: str) -> ChipData | ResponseCode | None:
    """The request's chip data; ``None`` for a request not read by chip; 30 (logged) for a bad field 55."""
    if request.get("22")[:2] not in CHIP_ENTRY_MODES:
        return None
    try:
        values = parse_icc(bytes.fromhex(request.get("55")), REQUEST_REQUIRED)
    except (ValueError, MessageDecodeError) as exc:
        log.warning("%s: field 55 refused (%s): answered 30, nothing posted", _where(request, pan), exc)
        return ResponseCode.FORMAT_ERROR
    return ChipData(values, request.get("23", "001")[-2:])


def _check(chip: ChipData, pan: str, registry: Registry, arc: str) -> ArqcCheck:
    values = chip.values
    return ArqcCheck(
        imk_under_lmk=registry.imk_ac_under_lmk,
        pan=pan,
        psn=chip.psn,
        atc=values[ATC_TAG],
        data=arqc_input(values),
        arqc=values["9F26"],
        arc=arc,
    )


def verify_chip(
    request: PosMessage, chip: ChipData, pan: str, registry: Registry
) -> Generator[Effect, Any, ResponseCode | bytes]:
    """The ARQC verified at the HSM, then the ATC recorded unless replayed: the ARPC an approval will carry (KQ
    answers it in the same round trip), else the code to refuse with."""
    arpc = yield VerifyArqc(_check(chip, pan, registry, ResponseCode.APPROVED.value))
    if isinstance(arpc, PeerFailure):
        return ResponseCode.SYSTEM_MALFUNCTION
    atc = int.from_bytes(chip.values[ATC_TAG], "big")
    if arpc is None:
        log.warning("%s: ARQC does not verify (ATC %d): answered %s, nothing posted", _where(request, pan), atc,
                    ARQC_FAILED.value)  # fmt: skip
        return ARQC_FAILED
    verdict = yield UseCounter(ATC_SCOPE, pan, atc, ATC_WINDOW)
    if verdict is not CounterVerdict.FRESH:
        log.warning("%s: ATC %d %s: answered %s, nothing posted", _where(request, pan), atc, verdict.value,
                    ATC_REPLAYED.value)  # fmt: skip
        return ATC_REPLAYED
    assert isinstance(arpc, bytes)
    return arpc


def answer_chip(
    answer: Answer, chip: ChipData, pan: str, registry: Registry, script: bytes | None, approval_arpc: bytes
) -> Generator[Effect, Any, None]:
    """Field 55 of the answer: 91 = ARPC ‖ ARC (the answer's code: an approval's ARPC came with the ARQC check,
    a decline's is asked for now), and on an approval the card's issuer script (72). Without an ARPC (the HSM
    failed) the answer goes without 55: the card then decides by itself."""
    arc = answer.response_code or ResponseCode.SYSTEM_MALFUNCTION.value
    arpc: bytes | PeerFailure = approval_arpc
    if arc != ResponseCode.APPROVED.value or not approval_arpc:
        arpc = yield GenerateArpc(_check(chip, pan, registry, arc))
    if isinstance(arpc, PeerFailure):
        log.warning("%s: no ARPC (%s): answered without 55", _where(answer.request, pan), arpc.kind.value)
        return
    scripts: tuple[IssuerScript, ...] = ()
    if script and arc == ResponseCode.APPROVED.value:
        scripts = (IssuerScript(script_id=SCRIPT_ID, commands=(script,)),)
    answer.fields["55"] = IssuerAnswer(arpc=arpc, arc=arc, after=scripts).encode().hex().upper()


def script_results(request: PosMessage) -> str | ResponseCode:
    """A 0620's script results (DF31) as hex for the log, or 30 for a 55 that does not parse."""
    try:
        values = parse_icc(bytes.fromhex(request.get("55")), SCRIPT_ADVICE_REQUIRED)
    except (ValueError, MessageDecodeError) as exc:
        log.warning("terminal %s STAN %s: 0620 field 55 refused (%s)", request.terminal_id, request.stan, exc)
        return ResponseCode.FORMAT_ERROR
    return values[SCRIPT_RESULTS_TAG].hex().upper()
