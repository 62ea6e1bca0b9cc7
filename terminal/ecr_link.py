"""The card terminal's side of the cash-register link (PROTOCOL: :mod:`wire.ecrlink`, docs/ecr.md).

A till connects, sends ``SALE`` / ``VOID`` / ``STAT`` and gets one answer each. :class:`EcrDesk` is the
sans-IO part: it reads a frame, decides what the terminal must do (a card transaction, or an answer straight
away), and remembers each till reference's result, so that a till that retries a SALE after a lost answer
gets the first result again instead of a second charge. :class:`EcrLink` is the shell: it serves the link on
the ``acqkit`` runtime and runs the card transactions on a :class:`~terminal.pos.PosTerminal`, one at a time
(a terminal does one transaction at a time).

A frame that does not decode is answered ``ERRR`` (30, naming the tag and offset); the connection and the
terminal carry on. The card is the one the terminal's (simulated) reader holds: a TEST card.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import logging
from typing import Final

import anyio
import anyio.abc

from acqkit.config import CardFixture
from acqkit.netio import FramedConnection, serve_tcp
from terminal.pos import PosTerminal
from terminal.session import Original, Outcome
from wire.constants import RESPONSE_MEANINGS, ResponseCode
from wire.ecrlink import ECR_LINK, NO_ANSWER, EcrKind, TerminalState
from wire.errors import MessageDecodeError
from wire.masking import mask_pan
from wire.tlvlink import LinkMessage, decode_message, encode_message, error_answer

log = logging.getLogger("acqsim.terminal.ecr")

#: Till references remembered (the oldest are forgotten first): a day's sales at a busy till.
MAX_REMEMBERED_SALES: Final = 2000
#: A till connection silent this long is closed.
IDLE_TIMEOUT_S: Final = 600.0
SEND_TIMEOUT_S: Final = 10.0
#: A till connection at a time per terminal is usual; a few are allowed (a second till, a status poller).
MAX_TILL_CONNECTIONS: Final = 4


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SaleRecord:
    reference: str
    amount: int
    result: str
    stan: str = ""
    rrn: str = ""
    auth_code: str = ""
    masked_pan: str = ""
    local_date: str = ""
    voided: bool = False

    def answer_values(self) -> dict[str, str | int | None]:
        return {
            "PM": self.masked_pan or None,
            "RR": self.rrn or None,
            "AC": self.auth_code or None,
            "ST": self.stan or None,
        }


@dataclasses.dataclass(frozen=True, slots=True)
class ChargeCard:
    """The terminal must run a purchase for ``amount`` on behalf of till reference ``reference``."""

    reference: str
    amount: int


@dataclasses.dataclass(frozen=True, slots=True)
class VoidSale:
    record: SaleRecord


Action = ChargeCard | VoidSale | LinkMessage


def _text(code: str) -> str:
    return RESPONSE_MEANINGS[ResponseCode(code)] if code in set(ResponseCode) else "unknown code"


class EcrDesk:
    """The link's rules, sans-IO."""

    def __init__(self, *, max_remembered: int = MAX_REMEMBERED_SALES) -> None:
        self.sales: collections.OrderedDict[str, SaleRecord] = collections.OrderedDict()
        self._max = max_remembered

    def plan(self, payload: bytes, *, terminal_state: str) -> tuple[LinkMessage | None, Action]:
        """The request read from ``payload`` (``None`` if unreadable) and what to do about it."""
        try:
            request = decode_message(payload, ECR_LINK)
        except MessageDecodeError as exc:
            log.info("unreadable ECR frame: %s", exc)
            return None, error_answer(exc)
        if request.is_answer:
            return None, error_answer(MessageDecodeError("an answer sent as a request", field="RC"))
        reference = request.get("ER")
        known = self.sales.get(reference) if reference is not None else None
        if request.kind == EcrKind.STATUS:
            if reference is None:
                return request, request.answer(ResponseCode.APPROVED, ON=terminal_state)
            if known is None:
                return request, request.answer(ResponseCode.ORIGINAL_NOT_FOUND, TX="no sale with this reference")
            state = "VOIDED" if known.voided else terminal_state
            return request, request.answer(known.result, ON=state, TX=_text(known.result), **known.answer_values())
        if request.kind == EcrKind.SALE:
            if known is not None:  # a retried SALE: the first result again, never a second charge
                return request, request.answer(known.result, TX=_text(known.result), **known.answer_values())
            amount = int(request["AM"])
            if amount <= 0:
                return request, request.answer(ResponseCode.INVALID_AMOUNT, TX="amount must be above zero")
            return request, ChargeCard(request["ER"], amount)
        # VOID
        if known is None or known.result != ResponseCode.APPROVED:
            return request, request.answer(ResponseCode.ORIGINAL_NOT_FOUND, TX="no approved sale with this reference")
        if known.voided:
            return request, request.answer(ResponseCode.APPROVED, TX="voided already", **known.answer_values())
        return request, VoidSale(known)

    def remember(self, record: SaleRecord) -> None:
        self.sales[record.reference] = record
        self.sales.move_to_end(record.reference)
        while len(self.sales) > self._max:
            self.sales.popitem(last=False)

    def sale_answer(
        self, request: LinkMessage, reference: str, amount: int, outcome: Outcome | None, pan: str
    ) -> LinkMessage:
        """Remember a purchase's outcome under the till's reference and answer the till."""
        if outcome is None:
            # No answer: the terminal has a reversal queued; the till may retry with a new reference.
            return request.answer(NO_ANSWER, TX="no answer from the host: a reversal is queued")
        code = outcome.response_code if outcome.trusted else ResponseCode.MAC_FAILED
        fields = outcome.fields
        record = SaleRecord(
            reference=reference,
            amount=amount,
            result=code,
            stan=fields.get("11", ""),
            rrn=fields.get("37", "").strip(),
            auth_code=fields.get("38", "").strip(),
            masked_pan=mask_pan(pan),
            local_date=fields.get("13", ""),
        )
        self.remember(record)
        return request.answer(code, TX=_text(code), **record.answer_values())

    def void_answer(self, request: LinkMessage, record: SaleRecord, outcome: Outcome | None) -> LinkMessage:
        if outcome is None:
            return request.answer(NO_ANSWER, TX="no answer from the host: a reversal is queued")
        code = outcome.response_code if outcome.trusted else ResponseCode.MAC_FAILED
        if code == ResponseCode.APPROVED:
            self.remember(dataclasses.replace(record, voided=True))
        values = record.answer_values() | {"ST": outcome.fields.get("11") or None}
        return request.answer(code, TX=_text(code), **values)


def terminal_state(pos: PosTerminal) -> str:
    state = pos.session.state
    if state.pending_reversal is not None:
        return TerminalState.REVERSAL_PENDING
    return TerminalState.READY if state.signed_on else TerminalState.NOT_SIGNED_ON


class EcrLink:
    """Serves tills for one terminal; the card transactions run one at a time."""

    def __init__(self, pos: PosTerminal, card: CardFixture, *, pin: str | None = None) -> None:
        self.pos = pos
        self.card = card
        self.pin = pin if pin is not None else card.pin
        self.desk = EcrDesk()
        self._busy = anyio.Lock()

    async def respond(self, payload: bytes) -> LinkMessage:
        async with self._busy:
            request, action = self.desk.plan(payload, terminal_state=terminal_state(self.pos))
            if isinstance(action, LinkMessage):
                return action
            assert request is not None
            if isinstance(action, ChargeCard):
                outcome = await self.pos.financial("purchase", self.card, amount=action.amount, pin=self.pin)
                return self.desk.sale_answer(request, action.reference, action.amount, outcome, self.card.pan)
            record = action.record
            original = Original(stan=record.stan, rrn=record.rrn, local_date=record.local_date)
            outcome = await self.pos.financial("void", self.card, amount=record.amount, original=original)
            return self.desk.void_answer(request, record, outcome)

    async def handle(self, conn: FramedConnection) -> None:
        while True:
            try:
                payload = await conn.receive(IDLE_TIMEOUT_S)
            except TimeoutError:
                return
            if payload is None:
                return
            answer = await self.respond(payload)
            with anyio.fail_after(SEND_TIMEOUT_S):
                await conn.send(encode_message(answer, ECR_LINK))


async def serve_ecr(
    host: str, port: int, *, link: EcrLink, task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED
) -> None:
    """Serve the ECR link on ``host:port`` until cancelled; ``task_status.started(port)``."""
    await serve_tcp(
        host,
        port,
        functools.partial(EcrLink.handle, link),
        name="ecr-link",
        max_connections=MAX_TILL_CONNECTIONS,
        task_status=task_status,
    )
