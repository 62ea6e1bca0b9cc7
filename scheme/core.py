"""The switch's rules, sans-IO: a request in, what to do with it out (docs/scheme.md). No I/O, no crypto.

The shell (:mod:`scheme.server`) has already parsed the frame, found the sending member by the header's source
id and verified the MAC under that member's ZAK. Then:

- :meth:`SwitchCore.route` — a request the switch cannot forward is answered here: MTI outside the message set
  40 (:class:`NotInMessageSet`, not journalled: it names no operation), a mandatory field missing or field 33
  not the sender 30, a BIN in no issuer's range 14 (a decline, never a crash); otherwise :class:`Forward` to
  the card's issuer with field 100 set to the issuer's id and the PIN block (if any) still to be translated
  from the acquirer's ZPK to the issuer's (CC at the switch's HSM);
- :meth:`SwitchCore.relay` — the issuer's answer goes back to the acquirer with the request's identifying
  fields and the issuer's 38 and 39;
- :meth:`SwitchCore.stand_in` — no answer from the issuer in time (or it cannot be reached): the switch
  decides for it by the :class:`StandInPolicy`: approve a purchase, pre-authorisation or completion up to the
  limit (auth code ``S`` + 5 digits), else decline 91. A reversal or void of a transaction the switch itself
  stood in for is approved (the switch is that transaction's authority); any other request answers 91, and
  the acquirer keeps a reversal queued and sends it again (store and forward).

Every outcome carries the :class:`LegRecord` the journal keeps (masked PAN only, and the PAN's keyed
fingerprint): clearing is made from it.

A request whose key (32, 37, MTI class) is journalled already is never forwarded again: with the same content
(:data:`REPEAT_PARTS`) it gets its first answer (:meth:`SwitchCore.replay`); with other content it is refused
**94** (:meth:`SwitchCore.refuse_repeat`), as the ledger refuses a changed repeat of its key, and
:meth:`SwitchCore.repeat_differences` names what differs for the log.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping
from typing import Final

from core_ledger.api import LedgerOp, op_for_route
from scheme.bins import BinTable
from scheme.members import Member
from wire.clearingfile import CardType
from wire.constants import ConditionCode, Mti, ResponseCode, response_mti
from wire.masking import mask_pan
from wire.switchlink import SwitchMessage

Fields = dict[str, str]
RC = ResponseCode

#: The MTIs the switch carries (authorisation, financial, advice, reversal).
REQUEST_MTIS: Final = frozenset({Mti.AUTH_REQUEST, Mti.FINANCIAL_REQUEST, Mti.ADVICE, Mti.REVERSAL})
#: Fields every request must carry.
MANDATORY: Final = ("2", "3", "4", "11", "12", "13", "32", "33", "37", "41", "42", "49")
#: The request fields an answer echoes (the acquirer matches the answer by MTI class, 32 and 37).
ECHOED: Final = ("2", "3", "4", "7", "11", "12", "13", "25", "32", "33", "37", "41", "42", "49", "100")
#: Operations a stand-in may approve: those that take the card holder's money, or hold it.
STAND_IN_DEBITS: Final = frozenset({LedgerOp.PURCHASE, LedgerOp.PREAUTH, LedgerOp.PREAUTH_COMPLETION})
#: Operations that undo an earlier transaction: approved in stand-in when the switch stood in for the original.
UNDOING: Final = frozenset({LedgerOp.REVERSAL, LedgerOp.VOID, LedgerOp.PREAUTH_COMPLETION_VOID})
STAND_IN_AUTH_PREFIX: Final = "S"
#: Operations that change the card holder's money or holds: when the issuer's answer is lost and the switch did
#: not approve, the issuer is sent a reversal (it may have carried the request out).
MONEY_MOVING: Final = frozenset(LedgerOp) - {LedgerOp.BALANCE, LedgerOp.REVERSAL}
#: The fields of the request an issuer reversal repeats (no PIN block, no track).
#: Fields the switch does not keep for a message it owes an issuer (no PIN block or track in its journal).
_NOT_OWED: Final = frozenset({"35", "52"})
#: What a repeat of a journalled key must carry as the first request did (field 7, the transmission time, may
#: change on a resend; the PAN is compared by its keyed fingerprint when both have one, else masked).
REPEAT_PARTS: Final = ("mti", "op", "pan", "amount", "currency", "stan", "terminal", "merchant", "original")
_REVERSAL_FIELDS: Final = ("2", "3", "4", "7", "11", "12", "13", "14", "25", "32", "33", "37", "41", "42", "49", "100")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class StandInPolicy:
    """``approve_limit`` in fen: approve debits up to it when the issuer is silent; ``None``: decline all 91."""

    approve_limit: int | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class LegRecord:
    """What the journal keeps of one request and its answer (never the full PAN, never a PIN block)."""

    acquirer_id: str
    rrn: str
    mti: str
    op: LedgerOp
    issuer_id: str  # "" when no issuer was found (unknown BIN)
    masked_pan: str
    card_type: CardType | None
    amount: int
    currency: str
    stan: str
    local_date: str
    terminal_id: str
    merchant_id: str
    response_code: ResponseCode
    auth_code: str
    stand_in: bool
    business_date: str  # YYYYMMDD at the switch
    #: For requests that name an original (field 90): its STAN and local date.
    original_stan: str = ""
    original_date: str = ""
    #: HMAC of the full PAN under the switch's data key (``DataKey.fingerprint``), set by the shell: a repeat
    #: with another card under the same key is told apart without keeping the PAN. Empty in older journals.
    pan_fingerprint: str = dataclasses.field(default="", repr=False)

    def content(self) -> dict[str, str]:
        """The parts of :data:`REPEAT_PARTS`, as text (the PAN masked; see :func:`repeat_differences`)."""
        return {
            "mti": self.mti,
            "op": self.op.value,
            "pan": self.masked_pan,
            "amount": str(self.amount),
            "currency": self.currency,
            "stan": self.stan,
            "terminal": self.terminal_id,
            "merchant": self.merchant_id,
            "original": f"{self.original_stan}/{self.original_date}",
        }

    @property
    def msg_class(self) -> str:
        return self.mti[:2]

    @property
    def approved(self) -> bool:
        return self.response_code is ResponseCode.APPROVED


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    """Answer the acquirer with ``fields`` (the shell adds the MAC) and journal ``record``."""

    fields: Fields
    record: LegRecord


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class NotInMessageSet:
    """Answer the acquirer with ``fields`` (40) and journal nothing: the request names no operation."""

    fields: Fields


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Forward:
    """Send ``fields`` to ``issuer``; translate field 52 from ``acquirer``'s ZPK to the issuer's first if set."""

    acquirer: Member
    issuer: Member
    fields: Fields
    card_type: CardType
    op: LedgerOp

    @property
    def translate_pin(self) -> bool:
        return "52" in self.fields


class SwitchCore:
    def __init__(
        self,
        *,
        switch_id: str,
        members: Mapping[str, Member],
        bins: BinTable,
        stand_in: StandInPolicy = StandInPolicy(),
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.switch_id = switch_id
        self.members = dict(members)
        self.bins = bins
        self.policy = stand_in
        self.clock = clock
        self._stand_in_counter = 0

    def member(self, institution_id: str) -> Member | None:
        return self.members.get(institution_id)

    # --- requests ------------------------------------------------------------------------------------------

    def route(self, message: SwitchMessage) -> Forward | Reply | NotInMessageSet:
        fields = message.fields
        acquirer = self.members[message.header.source_id]  # the shell found it before checking the MAC
        mti = fields.get("t", "")
        op = op_for_route(mti, fields.get("3", ""), fields.get("25", ConditionCode.NORMAL))
        if mti not in REQUEST_MTIS or op is None:
            unsupported = self._reply(fields, LedgerOp.BALANCE, RC.FUNCTION_NOT_SUPPORTED, issuer_id="", card=None)
            return NotInMessageSet(fields=unsupported.fields)
        if any(not fields.get(key, "").strip() for key in MANDATORY) or fields["33"] != acquirer.institution_id:
            return self._reply(fields, op, RC.FORMAT_ERROR, issuer_id="", card=None)
        if not fields["4"].isdigit():
            return self._reply(fields, op, RC.INVALID_AMOUNT, issuer_id="", card=None)
        route = self.bins.route(fields["2"])
        issuer = self.members.get(route.issuer_id) if route is not None else None
        if route is None or issuer is None or not issuer.issues:
            return self._reply(fields, op, RC.INVALID_CARD, issuer_id="", card=None)
        forwarded = {k: v for k, v in fields.items() if k != "128"}
        forwarded["100"] = issuer.institution_id
        return Forward(acquirer=acquirer, issuer=issuer, fields=forwarded, card_type=route.card_type, op=op)

    def relay(self, forward: Forward, issuer_answer: Fields) -> Reply:
        """The issuer's answer, for the acquirer. An answer code outside the contract is a 96."""
        try:
            code = ResponseCode(issuer_answer.get("39", ""))
        except ValueError:
            code = RC.SYSTEM_MALFUNCTION
        return self._reply(
            forward.fields,
            forward.op,
            code,
            issuer_id=forward.issuer.institution_id,
            card=forward.card_type,
            auth_code=issuer_answer.get("38", "") if code is RC.APPROVED else "",
        )

    def decline(self, forward: Forward, code: ResponseCode) -> Reply:
        """Answer without the issuer: the switch could not carry the request (e.g. the PIN block would not
        translate: 99)."""
        return self._reply(
            forward.fields, forward.op, code, issuer_id=forward.issuer.institution_id, card=forward.card_type
        )

    def replay(self, request: Fields, known: LegRecord) -> Fields:
        """The answer to a repeated request: its first answer's code and auth code (never forwarded again)."""
        reply = self._reply(request, known.op, known.response_code, issuer_id=known.issuer_id, card=known.card_type)
        if known.auth_code:
            reply.fields["38"] = known.auth_code
        return reply.fields

    def repeat_differences(self, known: LegRecord, request: Fields, *, pan_fingerprint: str) -> list[str]:
        """The parts of :data:`REPEAT_PARTS` in which ``request`` differs from the journalled ``known`` of the same
        key (empty: a true repeat). ``pan_fingerprint``: the request PAN's keyed fingerprint."""
        first, again = known.content(), self.repeat_content(request)
        differs = [part for part in REPEAT_PARTS if first[part] != again[part]]
        if "pan" not in differs and known.pan_fingerprint and known.pan_fingerprint != pan_fingerprint:
            differs.insert(REPEAT_PARTS.index("pan"), "pan")
        return sorted(differs, key=REPEAT_PARTS.index)

    def repeat_content(self, request: Fields) -> dict[str, str]:
        """``request``'s parts of :data:`REPEAT_PARTS`, as :meth:`LegRecord.content` gives a journalled one's."""
        op = op_for_route(request.get("t", ""), request.get("3", ""), request.get("25", ConditionCode.NORMAL))
        content = self._reply(request, op or LedgerOp.BALANCE, RC.APPROVED, issuer_id="", card=None).record.content()
        if op is None:
            content["op"] = "?"  # names no operation: never the same as a journalled one
        return content

    def refuse_repeat(self, request: Fields, known: LegRecord) -> Fields:
        """The answer to a journalled key repeated with other content: 94, nothing forwarded or journalled."""
        return self._reply(request, known.op, RC.DUPLICATE, issuer_id=known.issuer_id, card=known.card_type).fields

    def stand_in(self, forward: Forward, *, original_stood_in: bool = False) -> Reply:
        """The switch's decision for a silent issuer (see the module docstring)."""
        limit = self.policy.approve_limit
        amount = int(forward.fields["4"])
        approve = (forward.op in STAND_IN_DEBITS and limit is not None and amount <= limit) or (
            forward.op in UNDOING and original_stood_in
        )
        auth_code = ""
        if approve and forward.op in STAND_IN_DEBITS:
            self._stand_in_counter += 1
            auth_code = f"{STAND_IN_AUTH_PREFIX}{self._stand_in_counter % 100_000:05d}"
        code = RC.APPROVED if approve else RC.ISSUER_UNAVAILABLE
        return self._reply(
            forward.fields,
            forward.op,
            code,
            issuer_id=forward.issuer.institution_id,
            card=forward.card_type,
            auth_code=auth_code,
            stand_in=True,
        )

    def issuer_reversal(self, forward: Forward, reply: Reply) -> Fields | None:
        """The 0400 the switch owes the issuer when the issuer's answer was lost and the switch did not approve
        (``None`` when none is owed). It carries the original's RRN in 37 and the original in 90."""
        if reply.record.approved or forward.op not in MONEY_MOVING:
            return None
        fields: Fields = {k: forward.fields[k] for k in _REVERSAL_FIELDS if k in forward.fields}
        acquirer = fields["32"]
        original = f"{forward.fields['t']}{fields['11']}{fields['13']}{fields['12']}{acquirer:0>11}{acquirer:0>11}"
        return {**fields, "t": Mti.REVERSAL, "90": original}

    def stand_in_advice(self, forward: Forward, reply: Reply) -> Fields | None:
        """What the switch owes the issuer after approving in its place (``None`` when nothing is owed).

        A debit: an 0120 with the original's identifying fields (no PIN block, no track), 38 and 39 as the switch
        answered, and the original's MTI, STAN and time in 90, so the issuer posts it as the original operation
        under the original's key (32, 37): an issuer that did see the original posts nothing twice. An undoing
        request (reversal, void) of a stand-in approval: the request itself without PIN block and track, sent
        after that advice (the switch sends what it owes an issuer in order), so the issuer undoes it too."""
        record = reply.record
        if not (record.approved and record.stand_in):
            return None
        if forward.op in UNDOING:
            return {k: v for k, v in forward.fields.items() if k not in _NOT_OWED}
        if forward.op not in STAND_IN_DEBITS:
            return None
        fields: Fields = {k: forward.fields[k] for k in _REVERSAL_FIELDS if k in forward.fields}
        acquirer = fields["32"]
        original = f"{forward.fields['t']}{fields['11']}{fields['13']}{fields['12']}{acquirer:0>11}{acquirer:0>11}"
        advice = {**fields, "t": Mti.STAND_IN_ADVICE, "39": record.response_code.value, "90": original}
        if record.auth_code:
            advice["38"] = record.auth_code
        return advice

    # --- answers -------------------------------------------------------------------------------------------

    def _reply(
        self,
        request: Fields,
        op: LedgerOp,
        code: ResponseCode,
        *,
        issuer_id: str,
        card: CardType | None,
        auth_code: str = "",
        stand_in: bool = False,
    ) -> Reply:
        mti = request.get("t", "")
        try:
            answer_mti = response_mti(mti)
        except ValueError:
            answer_mti = Mti.FINANCIAL_RESPONSE
        fields: Fields = {k: request[k] for k in ECHOED if k in request}
        fields["t"] = answer_mti
        fields["39"] = code.value
        if auth_code:
            fields["38"] = auth_code
        original = request.get("90", "")
        amount = request.get("4", "")
        record = LegRecord(
            acquirer_id=request.get("32", ""),
            rrn=request.get("37", ""),
            mti=mti,
            op=op,
            issuer_id=issuer_id,
            masked_pan=mask_pan(request.get("2", "")),
            card_type=card,
            amount=int(amount) if amount.isdigit() else 0,
            currency=request.get("49", ""),
            stan=request.get("11", ""),
            local_date=request.get("13", ""),
            terminal_id=request.get("41", ""),
            merchant_id=request.get("42", ""),
            response_code=code,
            auth_code=auth_code,
            stand_in=stand_in,
            business_date=self.clock().strftime("%Y%m%d"),
            original_stan=original[4:10] if len(original) >= 14 else "",
            original_date=original[10:14] if len(original) >= 14 else "",
        )
        return Reply(fields=fields, record=record)
