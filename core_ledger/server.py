"""Thin anyio shell: the host-link server around :class:`core_ledger.service.LedgerService`.

Each connection is served in its own task, and each request on it in its own task too (up to
``MAX_IN_FLIGHT_PER_CONNECTION`` at once), so requests pipelined on one connection share a group commit;
answers go back as they become durable, not in request order (the client matches them by MTI class, 32, 37).

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
from typing import Final

import anyio
import anyio.abc

from acqkit import txnlog
from acqkit.metrics import HOP_SECONDS, IN_FLIGHT, TRANSACTIONS
from acqkit.netio import FramedConnection, acquire_slot, serve_tcp
from acqkit.rules import ActionKind, Hit, RuleBook, hit_note
from acqkit.serving import PLAIN, Serving
from core_ledger.api import LedgerAnswer, LedgerRequest
from core_ledger.engine import LedgerEngine
from core_ledger.hostlink import answer_fields, request_from_fields
from core_ledger.service import LedgerFailStop, LedgerService, OutcomeUnknown
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
#: What a bad message needs for a 30 answer the client can match: its MTI, 32 and 37.
_MATCH_FIELDS: Final = ("t", "32", "37")


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

    async def answer(conn: FramedConnection, fields: Fields, slot: anyio.Semaphore, bad: bool, hit: Hit | None) -> None:
        in_flight.enter()
        IN_FLIGHT.labels(service="ledger").inc()
        action = hit.action if hit is not None else None
        try:
            if action is not None and action.kind is ActionKind.DROP:
                return
            if action is not None and action.kind is ActionKind.DELAY:
                await anyio.sleep(action.delay_s)
            request = None if bad else _request_or_none(conn, fields)  # a bad one was logged with field, offset
            if action is not None and action.kind is ActionKind.ANSWER:  # scripted: nothing is posted
                answer = LedgerAnswer(response_code=ResponseCode(action.code or ""), rrn=fields.get("37", " " * 12))
            elif request is None:
                answer = LedgerAnswer(response_code=ResponseCode.FORMAT_ERROR, rrn=fields.get("37", " " * 12))
            else:
                try:
                    with HOP_SECONDS.labels(service="ledger", hop="commit").time():
                        answer = await ledger.submit(request)
                except OutcomeUnknown:
                    log.error(  # noqa: TRY400 - no payload
                        "no answer to %s: its commit did not finish in time (outcome unknown)", conn.peer
                    )
                    return
            encoded = _encode_answer(fields, answer)
            TRANSACTIONS.labels(service="ledger", mti=fields.get("t", "?"), code=answer.response_code.value).inc()
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
            with anyio.fail_after(SEND_TIMEOUT_S):
                await conn.send(encoded)
                if action is not None and action.kind is ActionKind.ANSWER_TWICE:
                    await conn.send(encoded)
        finally:
            in_flight.leave()
            IN_FLIGHT.labels(service="ledger").dec()
            slot.release()

    async def handle(conn: FramedConnection) -> None:
        slot = anyio.Semaphore(MAX_IN_FLIGHT_PER_CONNECTION)
        async with anyio.create_task_group() as requests:
            while True:
                await acquire_slot(slot)
                payload = await conn.receive(IDLE_TIMEOUT_S)
                if payload is None:
                    return
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
                requests.start_soon(answer, conn, fields, slot, error is not None, hit)

    async with anyio.create_task_group() as tg:
        await tg.start(ledger.run_flusher)
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
