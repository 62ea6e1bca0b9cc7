"""A simulated EMV / PBOC chip card, sans-IO: what a TEST card's chip answers to the terminal.

The card is personalised with its AC master key, derived (EMV option A) from the issuer's TEST IMK-AC, its PAN
and PAN sequence number — the HSM derives the same key from the same IMK under its LMK. Per transaction:

1. :meth:`ChipCard.first_generate_ac` — the ATC counts up (the caller persists :attr:`ChipCard.atc` before
   the request leaves, so an ATC is never used twice), the card fills its CVR / IAD (9F10) and answers an
   ARQC (CID ``80``) over the terminal's data (PROTOCOL.md §7). A card whose chip is configured to fail
   raises :class:`ChipReadError` (the terminal falls back to the stripe: 80x, 60.5 = 2).
2. :meth:`ChipCard.complete` — with the host's answer: the card checks the ARPC in 91 (method 1) against its
   own ARQC, runs the issuer scripts (71 before, 72 after the second GENERATE AC) and reports each in DF31, and
   gives its verdict at the second GENERATE AC: TC (approve) or AAC (decline). It declines when the host
   declined, when the ARPC does not verify, or when the card is configured to decline after approval.

Values are the bytes of the EMV data objects, keyed by tag (as :mod:`wire.icc` builds field 55 from them).
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Final

from wire.emv import SessionKeyMethod, arpc_method_1, derive_icc_master_key, derive_session_key, generate_ac
from wire.icc import IssuerAnswer, IssuerScript, arqc_input, script_result

#: Cryptogram information data (9F27).
CID_AAC: Final = 0x00
CID_TC: Final = 0x40
CID_ARQC: Final = 0x80
#: CVR byte 2 (EMV Book 3 / PBOC): which cryptogram the first and second GENERATE AC returned.
CVR_ARQC_FIRST_AAC_SECOND: Final = 0x80
CVR_ARQC_FIRST_TC_SECOND: Final = 0x90
CVR_ARQC_FIRST: Final = 0xA0
#: CVR byte 3 bit: issuer authentication failed (the ARPC did not verify).
CVR_ISSUER_AUTH_FAILED: Final = 0x04
#: TVR byte 5 bit: issuer authentication failed; TVR byte 5 bit: script processing failed before / after.
TVR_ISSUER_AUTH_FAILED: Final = 0x40
TVR_SCRIPT_FAILED_BEFORE: Final = 0x20
TVR_SCRIPT_FAILED_AFTER: Final = 0x10
#: The issuer-script commands this card accepts (CLA 84 = secure messaging): application block/unblock, PIN
#: change/unblock, PUT DATA / UPDATE RECORD. Anything else fails, and is reported as failed in DF31.
SCRIPT_COMMANDS: Final = frozenset({(0x84, 0x1E), (0x84, 0x18), (0x84, 0x24), (0x04, 0xDA), (0x04, 0xDC)})
APDU_HEADER_LEN: Final = 5
#: The static data objects of a TEST card (AIP, AID, application version, product information).
AIP: Final = bytes.fromhex("7C00")
AID_PBOC_DEBIT: Final = bytes.fromhex("A000000333010101")
APPLICATION_VERSION: Final = bytes.fromhex("0030")
#: Issuer application data: length 07 ‖ DKI 01 ‖ CVN 01 ‖ CVR (4) ‖ then the issuer's discretionary data.
IAD_HEAD: Final = bytes.fromhex("070101")
IAD_TAIL: Final = bytes.fromhex("0A01000000000000000000")
MAX_ATC: Final = 0xFFFF


class ChipBehaviour(enum.StrEnum):
    """How a TEST card's chip behaves (``chip`` in a card fixture)."""

    OK = "ok"
    FAILS = "fails"  # the chip does not answer: the terminal falls back to the stripe
    DECLINES = "declines"  # the card declines at the second GENERATE AC even when the host approved
    NONE = "none"  # a stripe-only card


class ChipReadError(Exception):
    """The chip did not answer (configured to fail, or its ATC is used up): fall back to the stripe."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TerminalData:
    """What the terminal gives the card for the first GENERATE AC (CDOL1)."""

    amount: int
    other_amount: int = 0
    currency: str = "0156"
    country: str = "0156"
    date: str  # YYMMDD
    txn_type: str = "00"
    unpredictable_number: bytes
    tvr: bytes = bytes(5)

    def values(self) -> dict[str, bytes]:
        return {
            "9F02": bytes.fromhex(f"{self.amount:012d}"),
            "9F03": bytes.fromhex(f"{self.other_amount:012d}"),
            "9F1A": bytes.fromhex(self.country),
            "95": self.tvr,
            "5F2A": bytes.fromhex(self.currency),
            "9A": bytes.fromhex(self.date),
            "9C": bytes.fromhex(self.txn_type),
            "9F37": self.unpredictable_number,
        }


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Completion:
    """The card's verdict after the host's answer."""

    approves: bool
    issuer_authenticated: bool | None  # None: the answer carried no 91
    cid: int
    tvr: bytes
    iad: bytes
    script_results: bytes  # DF31: one 5-byte result per script run (empty when none ran)

    @property
    def scripts_ran(self) -> bool:
        return bool(self.script_results)


class ChipCard:
    """One card's chip for the length of one transaction (the ATC lives on in the terminal's state)."""

    def __init__(
        self,
        *,
        pan: str,
        psn: str,
        icc_master_key: bytes,
        atc: int,
        behaviour: ChipBehaviour = ChipBehaviour.OK,
        method: SessionKeyMethod = SessionKeyMethod.PBOC,
    ) -> None:
        self.pan = pan
        self.psn = psn
        self._mk = icc_master_key
        self.atc = atc
        self.behaviour = behaviour
        self.method = method
        self._session_key: bytes | None = None
        self._arqc = b""
        self._values: dict[str, bytes] = {}

    @classmethod
    def personalise(
        cls, *, imk: bytes, pan: str, psn: str, atc: int, behaviour: ChipBehaviour = ChipBehaviour.OK
    ) -> ChipCard:
        """The card as the issuer's personalisation made it: MK from the IMK-AC (option A)."""
        return cls(pan=pan, psn=psn, icc_master_key=derive_icc_master_key(imk, pan, psn), atc=atc, behaviour=behaviour)

    def __repr__(self) -> str:
        return f"ChipCard(atc={self.atc}, behaviour={self.behaviour.value})"  # never the PAN or keys

    def first_generate_ac(self, terminal: TerminalData) -> dict[str, bytes]:
        """Count the ATC and answer an ARQC: the card's data objects for field 55 (with the terminal's)."""
        if self.behaviour in (ChipBehaviour.FAILS, ChipBehaviour.NONE):
            raise ChipReadError("the chip does not answer")
        if self.atc >= MAX_ATC:
            raise ChipReadError("the card's ATC is used up")
        self.atc += 1
        atc = self.atc.to_bytes(2, "big")
        iad = self._iad(bytes([0x03, CVR_ARQC_FIRST, 0x00, 0x02]))
        values = {**terminal.values(), "9F36": atc, "82": AIP, "9F10": iad}
        self._session_key = derive_session_key(self._mk, atc, self.method)
        self._arqc = generate_ac(self._session_key, arqc_input(values))
        self._values = values
        return {
            **values,
            "9F26": self._arqc,
            "9F27": bytes([CID_ARQC]),
            "84": AID_PBOC_DEBIT,
            "9F09": APPLICATION_VERSION,
        }

    @staticmethod
    def _iad(cvr: bytes) -> bytes:
        return IAD_HEAD + cvr + IAD_TAIL

    def complete(self, *, host_approved: bool, answer: IssuerAnswer | None) -> Completion:
        """Check the ARPC, run the scripts, and answer the second GENERATE AC."""
        if self._session_key is None:
            raise ChipReadError("no first GENERATE AC in this transaction")
        tvr = bytearray(self._values["95"])
        authenticated: bool | None = None
        if answer is not None:
            expected = arpc_method_1(self._session_key, self._arqc, answer.arc.encode("latin-1"))
            authenticated = expected == answer.arpc
            if not authenticated:
                tvr[4] |= TVR_ISSUER_AUTH_FAILED
        results = b""
        before = answer.before if answer is not None else ()
        after = answer.after if answer is not None else ()
        for script in before:
            result, ok = self._run_script(script)
            results += result
            if not ok:
                tvr[4] |= TVR_SCRIPT_FAILED_BEFORE
        approves = host_approved and authenticated is not False and self.behaviour is not ChipBehaviour.DECLINES
        cvr = bytearray([0x03, CVR_ARQC_FIRST_TC_SECOND if approves else CVR_ARQC_FIRST_AAC_SECOND, 0x00, 0x02])
        if authenticated is False:
            cvr[2] |= CVR_ISSUER_AUTH_FAILED
        for script in after:
            result, ok = self._run_script(script)
            results += result
            if not ok:
                tvr[4] |= TVR_SCRIPT_FAILED_AFTER
        return Completion(
            approves=approves,
            issuer_authenticated=authenticated,
            cid=CID_TC if approves else CID_AAC,
            tvr=bytes(tvr),
            iad=self._iad(bytes(cvr)),
            script_results=results,
        )

    @staticmethod
    def _run_script(script: IssuerScript) -> tuple[bytes, bool]:
        for number, command in enumerate(script.commands, start=1):
            if len(command) < APDU_HEADER_LEN or (command[0], command[1]) not in SCRIPT_COMMANDS:
                return script_result(script.script_id, failed_command=number), False
        return script_result(script.script_id), True
