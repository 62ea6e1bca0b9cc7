"""The ledger's task path (trio, and TLS on either backend): each connection on :mod:`acqkit.netio` is served by
two tasks, every request's rules being :class:`core_ledger.hostcore.HostCore`'s.

A reader decides each request as it arrives (the engine is pure and fast) and queues its records for the next
group commit; a writer answers the queued requests in order as their batches become durable — every answer of a
batch in one write. No task per request, no worker thread hop per request. Up to ``max_in_flight`` requests are
in flight per connection (the reader waits for a free slot before reading more), so requests pipelined on one
connection share a group commit. An :class:`~core_ledger.hostcore.Aside` (a rule acts on it, or it is
malformed) is answered by a task of its own, so its answer may overtake or follow others.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import deque
from typing import Final

import anyio
import anyio.abc

from acqkit.netio import ConnectionHandler, FramedConnection, acquire_slot
from acqkit.writedeadline import push_deadline
from core_ledger.hostcore import CLOSE, Aside, HostCore, Queued
from core_ledger.service import OutcomeUnknown

log = logging.getLogger("acqsim.ledger")

#: What a connection's writer waits for when its deadline passes (:class:`_WriterDeadline`).
_COMMIT: Final = "commit"
_SEND: Final = "send"
#: A writer's deadline is moved at most about this often while it is busy (or a tenth of the timeout, if less).
DEADLINE_SLACK_S: Final = 1.0


@dataclasses.dataclass(frozen=True, slots=True)
class Limits:
    """A connection's idle timeout (pushed back at most once per ``idle_slack_s``: a connection is closed after
    between ``idle_s`` and ``idle_s + idle_slack_s`` with nothing read), send timeout, and requests in flight."""

    idle_s: float
    idle_slack_s: float
    send_s: float
    max_in_flight: int


class _IdleDeadline:
    """A connection reader's idle timeout: one cancel scope for the reader's life (not one per read)."""

    __slots__ = ("limits", "scope")

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.scope = anyio.CancelScope()

    def push(self) -> None:
        """Something was read: the connection is not idle (moving a deadline costs about as much as a small read,
        so it moves at most once per ``idle_slack_s``)."""
        push_deadline(self.scope, self.limits.idle_s, self.limits.idle_slack_s)


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


class _Answers:
    """One connection's queued requests, oldest first; the reader appends, the writer takes."""

    def __init__(self) -> None:
        self.queue: deque[Queued] = deque()
        self.more = anyio.Event()
        self.closed = False

    def add(self, queued: Queued) -> None:
        self.queue.append(queued)
        self.more.set()

    def close(self) -> None:
        self.closed = True
        self.more.set()


def task_handler(core: HostCore, limits: Limits) -> ConnectionHandler:
    """The per-connection handler :func:`acqkit.netio.serve_tcp` runs."""
    ledger = core.ledger
    in_flight = core.in_flight

    def done(count: int, slot: anyio.Semaphore) -> None:
        in_flight.leave(count)
        for _ in range(count):
            slot.release()

    async def answer_aside(conn: FramedConnection, aside: Aside, slot: anyio.Semaphore) -> None:
        """A request a rule acts on, or a malformed one, in a task of its own."""
        try:
            if aside.delay_s:
                await anyio.sleep(aside.delay_s)
            answer = core.scripted(aside)
            if answer is None:
                assert aside.request is not None
                try:
                    with core.commit_seconds.time():
                        answer = await ledger.submit(aside.request)
                except OutcomeUnknown:
                    log.error(  # noqa: TRY400 - no payload
                        "no answer to %s: its commit did not finish in time (outcome unknown)", conn.peer
                    )
                    return
            encoded = core.answer(aside.fields, answer, conn.peer, aside.hit)
            with anyio.fail_after(limits.send_s):
                await conn.send(encoded)
                if aside.twice:
                    await conn.send(encoded)
        finally:
            done(1, slot)

    async def write_answers(conn: FramedConnection, answers: _Answers, slot: anyio.Semaphore) -> None:
        """Answer the connection's queued requests in order, each batch of durable ones in one write; one that
        is not durable within the commit timeout is answered nothing (outcome unknown: the ledger fail-stops).
        One cancel scope serves every wait (commit, then write), its deadline moved lazily (_WriterDeadline);
        one that passes early, while waiting for requests, just starts a new scope."""
        ready: list[Queued] = []
        try:
            while not (answers.closed and not answers.queue):
                deadline = _WriterDeadline()
                with deadline.scope:
                    await answer_in_order(conn, answers, (ready, slot), deadline)
                expired = deadline.waiting if deadline.scope.cancelled_caught else ""
                if expired == _COMMIT:  # the head's commit outlived the timeout (nothing was ready)
                    answers.queue.popleft()
                    core.unknown_outcome(conn.peer)
                    done(1, slot)
                elif expired == _SEND:
                    raise TimeoutError(f"answers to {conn.peer} not taken within {limits.send_s:g} s")
                else:
                    done(len(ready), slot)
                    ready.clear()
        finally:  # cancelled or the connection broke: whatever was not answered is no longer in flight
            done(len(ready) + len(answers.queue), slot)
            answers.queue.clear()

    async def answer_in_order(
        conn: FramedConnection,
        answers: _Answers,
        ready_and_slot: tuple[list[Queued], anyio.Semaphore],
        deadline: _WriterDeadline,
    ) -> None:
        """Answer until the connection's reader is done (returns) or a deadline passes (cancelled); ``ready``
        holds the batch being written meanwhile."""
        ready, slot = ready_and_slot
        while True:
            done(len(ready), slot)
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
            while answers.queue and answers.queue[0].durable:
                ready.append(answers.queue.popleft())
            encoded = core.answers(ready, conn.peer)
            deadline.expect(_SEND, limits.send_s)
            await conn.send_many(encoded)

    async def handle(conn: FramedConnection) -> None:
        slot = anyio.Semaphore(limits.max_in_flight)
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
        idle = _IdleDeadline(limits)
        with idle.scope:
            idle.push()
            await read_until_closed(conn, (slot, idle), answers, requests)
        if idle.scope.cancelled_caught:
            raise TimeoutError(f"nothing read from {conn.peer} for {limits.idle_s:g} s")

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
            step = core.read(payload, conn.peer)
            if isinstance(step, Queued):
                answers.add(step)
            elif isinstance(step, Aside):
                requests.start_soon(answer_aside, conn, step, slot)
            else:
                slot.release()
                if step is CLOSE:
                    return  # the requests already in flight on it finish first (this task group)

    return handle
