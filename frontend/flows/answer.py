"""The answer to a request: echoed fields, the response code, the MAC; and the :class:`Reply` the shell sends."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Generator
from typing import Any, Final

from frontend.effects import Effect, GenerateMac, JournalEffect, PeerFailure, Together
from frontend.flows.checks import card_number, is_request_mti
from frontend.messages import Kind
from frontend.records import Session
from frontend.registry import Registry
from frontend.routing import SchemeRoute
from wire.codec import MAC_FIELD, MAC_LEN, encode_pos_body
from wire.constants import ANSWER_ECHOED_FIELDS, ResponseCode, response_mti
from wire.errors import WireError
from wire.header import PROCESSING_NONE
from wire.posmessage import PosMessage

#: Fields echoed from request to answer.
ECHOED: Final = ANSWER_ECHOED_FIELDS
#: What the answer of a request of no known kind is logged as.
UNKNOWN_KIND: Final = "unknown"

Flow = Generator[Effect, Any, "Reply"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    body: bytes | None  # None: nothing can be answered (undecodable body, or not a request)
    header_request: int = PROCESSING_NONE
    note: str = ""  # one log/trace line: kind, terminal, STAN, response code — never a PAN or key
    correlation_id: str | None = None
    response_code: str = ""  # field 39 of the answer (metrics count answers by it)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Context:
    registry: Registry
    clock: Callable[[], dt.datetime] = dt.datetime.now  # the terminal's local time (fields 12/13)
    #: The BIN table and zone key for off-us cards (:mod:`frontend.routing`); ``None``: every card is on-us.
    scheme: SchemeRoute | None = None


def month_day(now: dt.datetime) -> str:
    """MMDD, as ``strftime("%m%d")`` gives it at three times the cost (it goes through a time tuple): field 15 of
    every answer."""
    return f"{now.month:02d}{now.day:02d}"


def local_date_time(request: PosMessage, now: dt.datetime) -> tuple[str, str]:
    """Fields 13 and 12 (MMDD, hhmmss) of the request, or the front-end's own clock where it sent none."""
    local_date = request.fields["13"] if "13" in request else now.strftime("%m%d")
    local_time = request.fields["12"] if "12" in request else now.strftime("%H%M%S")
    return local_date, local_time


class Answer:
    """The answer body being built from the request's fields."""

    def __init__(self, request: PosMessage, now: dt.datetime, acquirer_id: str) -> None:
        self.request = request
        fields = request.fields
        self.fields: dict[str, str] = {k: fields[k] for k in ECHOED if k in fields}
        self.fields["t"] = response_mti(request.mti)
        self.fields["13"], self.fields["12"] = local_date_time(request, now)
        self.fields["15"] = month_day(now)
        self.fields["32"] = acquirer_id
        if "2" not in self.fields and (pan := card_number(request)):
            self.fields["2"] = pan

    def code(self, code: ResponseCode | str) -> Answer:
        """Field 39: one of acqsim's codes, or (a rules file's scripted answer) any two characters."""
        self.fields["39"] = str(code)
        return self

    @property
    def response_code(self) -> str:
        return self.fields.get("39", "")


def _mac_answer(
    answer: Answer, session: Session | None, journaled: tuple[JournalEffect, ...] = ()
) -> Generator[Effect, Any, bytes]:
    """The answer's body, with a MAC from the HSM when the terminal has a MAK. ``journaled``: journal writes the
    answer must not leave before (the answer's own record): made durable while the HSM computes the MAC."""
    if session is None:
        for effect in journaled:  # noqa: UP028 - each result is sent back in: a tuple's iterator takes none
            yield effect
        return encode_pos_body(answer.fields)
    placeholder = encode_pos_body({**answer.fields, MAC_FIELD: "00" * MAC_LEN})
    asked = GenerateMac(session.mak, placeholder[:-MAC_LEN])
    mac: bytes | PeerFailure
    if journaled:
        *_, mac = yield Together((*journaled, asked))
    else:
        mac = yield asked
    if isinstance(mac, PeerFailure):
        answer.fields.pop(MAC_FIELD, None)
        answer.code(ResponseCode.SYSTEM_MALFUNCTION)
        return encode_pos_body(answer.fields)
    return placeholder[:-MAC_LEN] + mac


def done(
    answer: Answer,
    session: Session | None,
    kind: Kind | str,
    *,
    header_request: int = PROCESSING_NONE,
    journaled: tuple[JournalEffect, ...] = (),
) -> Flow:
    """The reply: the answer MACed under the session's MAK (none without a session), and its log line; the
    ``journaled`` writes are durable before it leaves (written while the MAC is computed)."""
    body = yield from _mac_answer(answer, session, journaled)
    request = answer.request
    note = f"{kind} terminal {request.terminal_id} STAN {request.stan} → {answer.response_code}"
    return Reply(
        body=body,
        header_request=header_request,
        note=note,
        correlation_id=request.correlation_id,
        response_code=answer.response_code,
    )


def refuse(answer: Answer, code: ResponseCode, session: Session | None, kind: Kind | str) -> Flow:
    """Answer ``code`` (MACed when there is a session)."""
    return (yield from done(answer.code(code), session, kind))


def malfunction_reply(request: PosMessage | None, ctx: Context, why: str) -> Reply:
    """96 for a request the front-end itself could not carry through (its journal failed, or a fault of its
    own): echoed fields, no MAC (the MAC would need the HSM, and the answer says the system failed anyway).
    A body that cannot be answered at all gives no answer."""
    if request is None:
        return Reply(body=None, note=f"no answer can be built ({why})")
    if not is_request_mti(request.mti):
        return Reply(body=None, note=f"not a request ({why})")
    try:
        answer = Answer(request, ctx.clock(), ctx.registry.acquirer_id).code(ResponseCode.SYSTEM_MALFUNCTION)
        body = encode_pos_body(answer.fields)
    except (WireError, ValueError):
        return Reply(body=None, note=f"no answer can be built ({why})")
    note = f"terminal {request.terminal_id} STAN {request.stan} → 96: {why}"
    return Reply(
        body=body, note=note, correlation_id=request.correlation_id, response_code=ResponseCode.SYSTEM_MALFUNCTION
    )
