"""The ledger's host-link rules for one request, sans-IO: a frame in → what to do about it, as data. Both shells
call it (``core_ledger/taskshell.py`` on trio and under TLS, ``core_ledger/callbackshell.py`` on asyncio): the
decoding and its errors, the scripted rules (answer / drop / close / delay / answer twice: docs/rules.md), the
engine's decision (queued for the group commit by :class:`core_ledger.service.LedgerService`), the traces, the
transaction log and the metrics live here once.

:meth:`HostCore.read` turns a frame into one of:

- ``None``: nothing to answer — a message that does not decode far enough to be matched (its MTI, 32 and 37:
  dropped with a WARNING naming the field and offset), or one a DROP rule drops;
- :data:`CLOSE`: a CLOSE rule: the connection closes once the requests already in flight on it are answered;
- :class:`Queued`: decided and queued for commit; answered in request order once its batch is durable
  (:meth:`HostCore.answers`);
- :class:`Aside`: answered on its own, perhaps out of order (the client matches answers by MTI class, 32 and 37):
  a message that decodes but lacks what the operation needs, or whose field after 32 and 37 is bad (30), or one a
  rule answers (its code, nothing posted), delays (``delay_s``, then posted) or answers twice.

What :meth:`HostCore.read` returns as ``Queued`` or ``Aside`` is in flight (:class:`InFlight`) until its shell
says it is done with it (answered, dropped with its connection, or its outcome unknown).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Final

import anyio
from prometheus_client import Gauge

from acqkit import txnlog
from acqkit.metrics import HOP_SECONDS, IN_FLIGHT, transactions_counter
from acqkit.rules import ActionKind, Hit, RuleBook, hit_note
from core_ledger.api import LedgerAnswer, LedgerRequest
from core_ledger.hostlink import answer_fields, request_from_fields
from core_ledger.service import LedgerService, Pending
from wire.codec import Fields, decode_host_partial, encode_host
from wire.constants import ResponseCode
from wire.errors import MessageDecodeError, MessageEncodeError
from wire.trace import TraceWriter, correlation_id

log = logging.getLogger("acqsim.ledger")

#: What a bad message needs for a 30 answer the client can match: its MTI, 32 and 37.
MATCH_FIELDS: Final = ("t", "32", "37")
#: The RRN answered when a request has none (field 37 is an12).
_NO_RRN: Final = " " * 12


class _Close:
    """A CLOSE rule matched: see :data:`CLOSE`."""

    __slots__ = ()


#: A rule closes the connection: the request is neither posted nor answered; those in flight on it are answered
#: first (if they can be), then it closes.
CLOSE: Final = _Close()


@dataclasses.dataclass(frozen=True, slots=True)
class Queued:
    """A request decided and queued for commit, its answer held until its batch is durable."""

    fields: Fields
    pending: Pending
    #: ``time.perf_counter()`` when it was queued (the commit hop's metric).
    queued_at: float

    @property
    def durable(self) -> bool:
        """Its batch is written (or failed: the answer is then 96), or it never had one."""
        ticket = self.pending.ticket
        return ticket is None or ticket.done.is_set()


@dataclasses.dataclass(frozen=True, slots=True)
class Aside:
    """A request answered on its own: a rule acts on it, or it is malformed (``request`` None: answered 30)."""

    fields: Fields
    request: LedgerRequest | None
    hit: Hit | None

    @property
    def delay_s(self) -> float:
        """How long a DELAY rule holds it before it is posted and answered (0: no delay)."""
        hit = self.hit
        return hit.action.delay_s if hit is not None and hit.action.kind is ActionKind.DELAY else 0.0

    @property
    def twice(self) -> bool:
        """An ANSWER_TWICE rule: its answer is sent twice."""
        return self.hit is not None and self.hit.action.kind is ActionKind.ANSWER_TWICE


#: What :meth:`HostCore.read` makes of a frame (see the module).
Step = Queued | Aside | _Close | None


class InFlight:
    """Counts the requests being answered (all connections), so that a fail-stop can wait for their answers to
    go out; mirrored in the in-flight gauge."""

    __slots__ = ("_gauge", "_idle", "count")

    def __init__(self, gauge: Gauge) -> None:
        self.count = 0
        self._gauge = gauge
        self._idle: anyio.Event | None = None  # made by wait_idle (in a task), set by the leave that empties it

    def enter(self) -> None:
        self.count += 1
        self._gauge.inc()

    def leave(self, count: int = 1) -> None:
        if count:
            self.count -= count
            self._gauge.dec(count)
            if self.count == 0 and self._idle is not None:
                self._idle.set()

    async def wait_idle(self) -> None:
        """Return once nothing is in flight."""
        if self.count:
            self._idle = anyio.Event()
            await self._idle.wait()


class HostCore:
    """One ledger's host-link rules over its connections (see the module)."""

    def __init__(self, ledger: LedgerService, *, rules: RuleBook | None, tracer: TraceWriter | None) -> None:
        self.ledger = ledger
        self.rules = rules
        self.tracer = tracer if tracer is not None and tracer.enabled else None
        self.in_flight = InFlight(IN_FLIGHT.labels(service="ledger"))
        #: The commit hop's metric: from a request's decision to its batch being durable.
        self.commit_seconds = HOP_SECONDS.labels(service="ledger", hop="commit")

    def read(self, payload: bytes, peer: str) -> Step:
        """Decode a request, apply the rules, and decide it (see the module)."""
        fields, error = decode_host_partial(payload)
        if error is not None:
            if not all(fields.get(name, "").strip() for name in MATCH_FIELDS):
                log.warning("dropped an undecodable host message from %s: %s", peer, error)
                return None
            log.warning("answering 30 to an undecodable host message from %s: %s", peer, error)
        hit = self.rules.match(fields) if self.rules is not None and error is None else None
        if hit is not None:
            log.info("rule %d (%s): %s", hit.number, hit.rule, hit.action.kind)
        if self.tracer is not None:
            cid = correlation_id(fields.get("41", "?"), fields.get("11", "?"))
            self.tracer.record(
                direction="in", link="host", peer=peer, payload=payload, correlation_id=cid, note=hit_note(hit)
            )
        if hit is not None and hit.action.kind is ActionKind.CLOSE:
            log.info("closing the host link from %s: a rule says so", peer)
            return CLOSE
        if hit is not None and hit.action.kind is ActionKind.DROP:
            return None
        request = None if error is not None else _request_or_none(fields, peer)  # a bad one was logged
        self.in_flight.enter()
        if request is None or hit is not None:
            return Aside(fields, request, hit)
        return Queued(fields, self.ledger.enqueue(request), time.perf_counter())

    def answers(self, durable: list[Queued], peer: str) -> list[bytes]:
        """The answers to queued requests whose batches are durable, in order (they stay in flight until the
        caller says they are done)."""
        now = time.perf_counter()
        observe = self.commit_seconds.observe
        settled = self.ledger.settled
        encoded = []
        for queued in durable:
            observe(now - queued.queued_at)
            encoded.append(self.answer(queued.fields, settled(queued.pending), peer, None))
        return encoded

    def scripted(self, aside: Aside) -> LedgerAnswer | None:
        """An aside's answer when the ledger is not asked: a rule's code (nothing is posted) or 30 for a malformed
        request; ``None`` when the request is to be posted."""
        action = aside.hit.action if aside.hit is not None else None
        if action is not None and action.kind is ActionKind.ANSWER:
            return LedgerAnswer(response_code=ResponseCode(action.code or ""), rrn=aside.fields.get("37", _NO_RRN))
        if aside.request is None:
            return LedgerAnswer(response_code=ResponseCode.FORMAT_ERROR, rrn=aside.fields.get("37", _NO_RRN))
        return None

    def unknown_outcome(self, peer: str) -> None:
        """A request's batch was not durable within the commit timeout: it gets no answer (it may still commit),
        and the ledger fail-stops."""
        self.ledger.timed_out()
        log.error("no answer to %s: its commit did not finish in time (outcome unknown)", peer)

    def answer(self, fields: Fields, answer: LedgerAnswer, peer: str, hit: Hit | None) -> bytes:
        """The answer's bytes, counted, logged and traced."""
        encoded = _encode_answer(fields, answer)
        transactions_counter("ledger", fields.get("t", "?"), answer.response_code).inc()  # a StrEnum: its value
        if txnlog.enabled():
            shown = {**txnlog.iso_summary(fields), "code": answer.response_code.value, "note": hit_note(hit)}
            txnlog.log_transaction("ledger", correlation_id(fields.get("41", "?"), fields.get("11", "?")), **shown)
        if self.tracer is not None:
            cid = correlation_id(fields.get("41", "?"), fields.get("11", "?"))
            self.tracer.record(
                direction="out",
                link="host",
                peer=peer,
                payload=encoded,
                correlation_id=cid,
                note=answer.response_code.value,
            )
        return encoded


def _encode_answer(fields: Fields, answer: LedgerAnswer) -> bytes:
    """The answer's bytes; balances that do not fit field 54 are left out rather than losing the answer (the
    decision is already durable, so the caller must hear it)."""
    try:
        return encode_host(answer_fields(fields, answer))
    except (MessageEncodeError, MessageDecodeError) as exc:
        log.warning("answer without field 54: %s", exc)
        return encode_host(answer_fields(fields, dataclasses.replace(answer, balance=None, available=None)))


def _request_or_none(fields: Fields, peer: str) -> LedgerRequest | None:
    try:
        return request_from_fields(fields)
    except (MessageDecodeError, ValueError) as exc:
        log.info("format error from %s: %s", peer, exc)
        return None
