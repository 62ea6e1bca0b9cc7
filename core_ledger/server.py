"""Thin anyio shell: the host-link server around :class:`core_ledger.service.LedgerService`.

Each connection is served by two tasks: a reader that decides each request as it arrives (the engine is pure
and fast) and queues its records for the next group commit, and a writer that answers the queued requests in
order as their batches become durable — every answer of a batch in one write. No task per request, no worker
thread hop per request (the group commit's flusher hands SQLite a whole batch). Up to
``MAX_IN_FLIGHT_PER_CONNECTION`` requests are in flight per connection, so requests pipelined on one connection
share a group commit. A request a rule delays, drops, answers or repeats, and a malformed one, is answered by a
task of its own instead, so its answer may overtake or follow others (the client matches answers by MTI class,
32, 37).

A bad message costs only itself: one that decodes but lacks what the operation needs is answered 30 (format
error); one that does not decode is answered 30 too when its MTI, 32 and 37 could be read (they come before
the bad field), else dropped with a WARNING naming the field and offset. Either way the connection and every
other request on it carry on. Only a framing error (the length prefix: the stream is out of step) closes it.

Fail-stop: once the service fails (:class:`core_ledger.service.LedgerFailStop`), requests in flight get their
96 for up to ``FAIL_STOP_DRAIN_S``, then :func:`serve` raises ``LedgerFailStop`` and the process exits.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections import deque
from typing import Final

import anyio
import anyio.abc

from acqkit import txnlog
from acqkit.metrics import HOP_SECONDS, IN_FLIGHT, transactions_counter
from acqkit.netio import FramedConnection, acquire_slot, serve_tcp
from acqkit.rules import ActionKind, Hit, RuleBook, hit_note
from acqkit.serving import PLAIN, Serving
from acqkit.traceflush import flush_traces
from acqkit.writedeadline import push_deadline
from core_ledger.api import LedgerAnswer, LedgerRequest
from core_ledger.engine import LedgerEngine
from core_ledger.hostlink import answer_fields, request_from_fields
from core_ledger.service import LedgerFailStop, LedgerService, OutcomeUnknown, Pending
from core_ledger.store import LedgerStore
from wire.codec import Fields, decode_host_partial, encode_host
from wire.constants import ResponseCode
from wire.errors import MessageDecodeError, MessageEncodeError
from wire.trace import TraceWriter, correlation_id

log = logging.getLogger("acqsim.ledger")

#: A connection silent this long is closed.
IDLE_TIMEOUT_S: Final = 600.0
#: Longest an answer may wait for the peer to take it (a peer that stops reading loses its connection).
SEND_TIMEOUT_S: Final = 10.0
#: Requests one connection may have in flight; the reader waits for a free slot before reading more.
MAX_IN_FLIGHT_PER_CONNECTION: Final = 256
#: After a fail-stop, how long requests in flight may take to get their 96 before the server ends.
FAIL_STOP_DRAIN_S: Final = 2.0
#: The reader pushes its idle deadline back at most this often (not on every frame: moving a deadline costs about
#: as much as a small read), to IDLE_TIMEOUT_S + IDLE_SLACK_S from then: a connection is closed after between
#: IDLE_TIMEOUT_S and IDLE_TIMEOUT_S + IDLE_SLACK_S with nothing read.
IDLE_SLACK_S: Final = 1.0
#: What a bad message needs for a 30 answer the client can match: its MTI, 32 and 37.
_MATCH_FIELDS: Final = ("t", "32", "37")


class _IdleDeadline:
    """A connection reader's idle timeout: one cancel scope for the reader's life (not one per read)."""

    __slots__ = ("scope",)

    def __init__(self) -> None:
        self.scope = anyio.CancelScope()

    def push(self) -> None:
        """Something was read: the connection is not idle (see IDLE_SLACK_S)."""
        push_deadline(self.scope, IDLE_TIMEOUT_S, IDLE_SLACK_S)


#: What a connection's writer waits for when its deadline passes (:class:`_WriterDeadline`).
_COMMIT: Final = "commit"
_SEND: Final = "send"
#: A writer's deadline is moved at most about this often while it is busy (or a tenth of the timeout, if less).
DEADLINE_SLACK_S: Final = 1.0


class _WriterDeadline:
    """A connection writer's commit and send timeouts in one cancel scope, its deadline not moved per wait (two
    moves per wait cost about 9 us here) but only when it is not already between ``timeout`` and ``timeout +
    slack`` ahead: while answers flow, about once per ``DEADLINE_SLACK_S``. A wait so bounded ends within its
    timeout plus the slack. The deadline may pass while the writer waits for requests, which has no timeout:
    that ends this scope early, and the writer goes on under a new one (``waiting`` says which wait it was)."""

    __slots__ = ("scope", "waiting")

    def __init__(self) -> None:
        self.scope = anyio.CancelScope()
        #: ``_COMMIT``, ``_SEND``, or ``""`` while waiting for requests.
        self.waiting = ""

    def expect(self, what: str, timeout: float) -> None:
        """A wait for ``what`` begins, which must end within ``timeout``."""
        self.waiting = what
        push_deadline(self.scope, timeout, min(DEADLINE_SLACK_S, timeout / 10))


class _InFlight:
    """Counts requests being answered, so that a fail-stop can wait for their answers to go out."""

    def __init__(self) -> None:
        self.count = 0
        self._idle = anyio.Event()
        self._idle.set()

    def enter(self) -> None:
        if self.count == 0:
            self._idle = anyio.Event()
        self.count += 1

    def leave(self) -> None:
        self.count -= 1
        if self.count == 0:
            self._idle.set()

    async def wait_idle(self) -> None:
        await self._idle.wait()


@dataclasses.dataclass(frozen=True, slots=True)
class _Queued:
    """A request decided and queued for commit, waiting for its answer to go out."""

    fields: Fields
    pending: Pending
    #: ``time.perf_counter()`` when it was queued (the commit hop's metric).
    queued_at: float

    @property
    def durable(self) -> bool:
        ticket = self.pending.ticket
        return ticket is None or ticket.done.is_set()


class _Answers:
    """One connection's queued requests, oldest first; the reader appends, the writer takes."""

    def __init__(self) -> None:
        self.queue: deque[_Queued] = deque()
        self.more = anyio.Event()
        self.closed = False

    def add(self, queued: _Queued) -> None:
        self.queue.append(queued)
        self.more.set()

    def close(self) -> None:
        self.closed = True
        self.more.set()


def _encode_answer(fields: Fields, answer: LedgerAnswer) -> bytes:
    """The answer's bytes; balances that do not fit field 54 are left out rather than losing the answer (the
    decision is already durable, so the caller must hear it)."""
    try:
        return encode_host(answer_fields(fields, answer))
    except (MessageEncodeError, MessageDecodeError) as exc:
        log.warning("answer without field 54: %s", exc)
        return encode_host(answer_fields(fields, dataclasses.replace(answer, balance=None, available=None)))


def _request_or_none(conn: FramedConnection, fields: Fields) -> LedgerRequest | None:
    try:
        return request_from_fields(fields)
    except (MessageDecodeError, ValueError) as exc:
        log.info("format error from %s: %s", conn.peer, exc)
        return None


async def serve(
    host: str,
    port: int,
    *,
    service: LedgerService | None = None,
    store: LedgerStore | None = None,
    trace: TraceWriter | None = None,
    serving: Serving = PLAIN,
    rules: RuleBook | None = None,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the host link on ``host:port`` until cancelled; ``task_status.started(port)`` gives the bound port.

    Pass a ready ``service``, or a ``store`` (the service is then built over what the store holds). Raises
    :class:`LedgerFailStop` once the service has failed (a commit failed or hung) and its answers are out.
    ``rules``: scripted answers and faults (:mod:`acqkit.rules`): a matching request is answered with the
    rule's code without being posted, delayed, dropped, answered twice, or closes its connection (unposted,
    unanswered; the other requests in flight on it are answered if they can be, before it closes).
    """
    if (service is None) == (store is None):
        raise TypeError("serve() needs exactly one of service= or store=")
    if service is None:
        assert store is not None
        loaded = await anyio.to_thread.run_sync(store.load)
        service = LedgerService(store, LedgerEngine(loaded))
    ledger = service
    tracer = trace if trace is not None and trace.enabled else None
    in_flight = _InFlight()
    in_flight_gauge = IN_FLIGHT.labels(service="ledger")
    commit_seconds = HOP_SECONDS.labels(service="ledger", hop="commit")

    def answered(fields: Fields, answer: LedgerAnswer, conn: FramedConnection, hit: Hit | None) -> bytes:
        """The answer's bytes, counted, logged and traced."""
        encoded = _encode_answer(fields, answer)
        transactions_counter("ledger", fields.get("t", "?"), answer.response_code).inc()  # a StrEnum: its value
        if txnlog.enabled():
            shown = {**txnlog.iso_summary(fields), "code": answer.response_code.value, "note": hit_note(hit)}
            txnlog.log_transaction("ledger", correlation_id(fields.get("41", "?"), fields.get("11", "?")), **shown)
        if tracer is not None:
            cid = correlation_id(fields.get("41", "?"), fields.get("11", "?"))
            tracer.record(
                direction="out",
                link="host",
                peer=conn.peer,
                payload=encoded,
                correlation_id=cid,
                note=answer.response_code.value,
            )
        return encoded

    async def answer(
        conn: FramedConnection, fields: Fields, slot: anyio.Semaphore, request: LedgerRequest | None, hit: Hit | None
    ) -> None:
        """A request a rule acts on, or a malformed one (``request`` None: answered 30), in a task of its own."""
        in_flight.enter()
        in_flight_gauge.inc()
        action = hit.action if hit is not None else None
        try:
            if action is not None and action.kind is ActionKind.DROP:
                return
            if action is not None and action.kind is ActionKind.DELAY:
                await anyio.sleep(action.delay_s)
            if action is not None and action.kind is ActionKind.ANSWER:  # scripted: nothing is posted
                answer = LedgerAnswer(response_code=ResponseCode(action.code or ""), rrn=fields.get("37", " " * 12))
            elif request is None:
                answer = LedgerAnswer(response_code=ResponseCode.FORMAT_ERROR, rrn=fields.get("37", " " * 12))
            else:
                try:
                    with commit_seconds.time():
                        answer = await ledger.submit(request)
                except OutcomeUnknown:
                    log.error(  # noqa: TRY400 - no payload
                        "no answer to %s: its commit did not finish in time (outcome unknown)", conn.peer
                    )
                    return
            encoded = answered(fields, answer, conn, hit)
            with anyio.fail_after(SEND_TIMEOUT_S):
                await conn.send(encoded)
                if action is not None and action.kind is ActionKind.ANSWER_TWICE:
                    await conn.send(encoded)
        finally:
            in_flight.leave()
            in_flight_gauge.dec()
            slot.release()

    async def write_answers(conn: FramedConnection, answers: _Answers, slot: anyio.Semaphore) -> None:
        """Answer the connection's queued requests in order, each batch of durable ones in one write; one that
        is not durable within the commit timeout is answered nothing (outcome unknown: the ledger fail-stops).
        One cancel scope serves every wait (commit, then write), its deadline moved lazily (_WriterDeadline);
        one that passes early, while waiting for requests, just starts a new scope."""
        ready: list[_Queued] = []
        try:
            while not (answers.closed and not answers.queue):
                deadline = _WriterDeadline()
                with deadline.scope:
                    await answer_in_order(conn, answers, (ready, slot), deadline)
                expired = deadline.waiting if deadline.scope.cancelled_caught else ""
                if expired == _COMMIT:  # the head's commit outlived the timeout (nothing was ready)
                    answers.queue.popleft()
                    ledger.timed_out()
                    log.error("no answer to %s: its commit did not finish in time (outcome unknown)", conn.peer)
                    _done(1, slot)
                elif expired == _SEND:
                    raise TimeoutError(f"answers to {conn.peer} not taken within {SEND_TIMEOUT_S:g} s")
                else:
                    _done(len(ready), slot)
                    ready.clear()
        finally:  # cancelled or the connection broke: whatever was not answered is no longer in flight
            _done(len(ready) + len(answers.queue), slot)
            answers.queue.clear()

    async def answer_in_order(
        conn: FramedConnection,
        answers: _Answers,
        ready_and_slot: tuple[list[_Queued], anyio.Semaphore],
        deadline: _WriterDeadline,
    ) -> None:
        """Answer until the connection's reader is done (returns) or a deadline passes (cancelled); ``ready``
        holds the batch being written meanwhile."""
        ready, slot = ready_and_slot
        while True:
            _done(len(ready), slot)
            ready.clear()
            if not answers.queue:
                if answers.closed:
                    return
                deadline.waiting = ""  # no deadline for requests to come: an early one only renews the scope
                answers.more = anyio.Event()
                await answers.more.wait()
                continue
            head = answers.queue[0]
            if not head.durable:
                assert head.pending.ticket is not None
                deadline.expect(_COMMIT, ledger.commit_timeout)
                await head.pending.ticket.done.wait()
            now = time.perf_counter()
            while answers.queue and answers.queue[0].durable:
                ready.append(queued := answers.queue.popleft())
                commit_seconds.observe(now - queued.queued_at)
            encoded = [answered(q.fields, ledger.settled(q.pending), conn, None) for q in ready]
            deadline.expect(_SEND, SEND_TIMEOUT_S)
            await conn.send_many(encoded)

    def _done(count: int, slot: anyio.Semaphore) -> None:
        for _ in range(count):
            in_flight.leave()
            slot.release()
        in_flight_gauge.dec(count)

    async def handle(conn: FramedConnection) -> None:
        slot = anyio.Semaphore(MAX_IN_FLIGHT_PER_CONNECTION)
        answers = _Answers()
        async with anyio.create_task_group() as requests:
            requests.start_soon(write_answers, conn, answers, slot)
            try:
                await read_requests(conn, slot, answers, requests)
            finally:
                answers.close()  # the writer answers what is queued, then ends

    async def read_requests(
        conn: FramedConnection, slot: anyio.Semaphore, answers: _Answers, requests: anyio.abc.TaskGroup
    ) -> None:
        idle = _IdleDeadline()
        with idle.scope:
            idle.push()
            await read_until_closed(conn, (slot, idle), answers, requests)
        if idle.scope.cancelled_caught:
            raise TimeoutError(f"nothing read from {conn.peer} for {IDLE_TIMEOUT_S:g} s")

    async def read_until_closed(
        conn: FramedConnection,
        slot_and_idle: tuple[anyio.Semaphore, _IdleDeadline],
        answers: _Answers,
        requests: anyio.abc.TaskGroup,
    ) -> None:
        slot, idle = slot_and_idle
        while True:
            await acquire_slot(slot)
            payload = await conn.receive()  # bounded by the idle deadline's scope
            if payload is None:
                return
            idle.push()
            fields, error = decode_host_partial(payload)
            if error is not None:
                if not all(fields.get(name, "").strip() for name in _MATCH_FIELDS):
                    log.warning("dropped an undecodable host message from %s: %s", conn.peer, error)
                    slot.release()
                    continue
                log.warning("answering 30 to an undecodable host message from %s: %s", conn.peer, error)
            hit = rules.match(fields) if rules is not None and error is None else None
            if hit is not None:
                log.info("rule %d (%s): %s", hit.number, hit.rule, hit.action.kind)
            if tracer is not None:
                cid = correlation_id(fields.get("41", "?"), fields.get("11", "?"))
                tracer.record(
                    direction="in",
                    link="host",
                    peer=conn.peer,
                    payload=payload,
                    correlation_id=cid,
                    note=hit_note(hit),
                )
            if hit is not None and hit.action.kind is ActionKind.CLOSE:
                slot.release()
                log.info("closing the host link from %s: a rule says so", conn.peer)
                return  # the requests already in flight on it finish first (this task group)
            request = None if error is not None else _request_or_none(conn, fields)  # a bad one was logged
            if request is None or hit is not None:
                requests.start_soon(answer, conn, fields, slot, request, hit)
                continue
            in_flight.enter()
            in_flight_gauge.inc()
            answers.add(_Queued(fields, ledger.enqueue(request), time.perf_counter()))

    async with anyio.create_task_group() as tg:
        await tg.start(ledger.run_flusher)
        if tracer is not None:
            await tg.start(flush_traces, tracer)
        listening = functools.partial(
            serve_tcp,
            host,
            port,
            handle,
            name="ledger",
            max_connections=serving.max_connections,
            tls=serving.server_tls,
        )
        bound = await tg.start(listening)
        task_status.started(bound)
        cause = await ledger.wait_stopped()
        with anyio.move_on_after(FAIL_STOP_DRAIN_S):
            await in_flight.wait_idle()
        tg.cancel_scope.cancel()
    raise LedgerFailStop(cause)
