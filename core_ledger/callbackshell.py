"""The ledger's callback path (asyncio, plain TCP): each connection is a :class:`acqkit.frameprotocol.FrameSession`
stepped from the event loop's callbacks, no task per connection or request; every request's rules are
:class:`core_ledger.hostcore.HostCore`'s, as on the task path (``core_ledger/taskshell.py``).

- The frames of one read are decided in one call and their records queued for the next group commit. Answers
  leave in request order per connection as their batches become durable: the group commit calls the session back
  when the batch at the head of its queue is released (:meth:`acqkit.groupcommit.Ticket.when_released`, one
  callback per batch and connection), and every answer then durable goes out in one write.
- A request whose batch is not durable within the commit timeout (the group commit releases it at its deadline)
  is answered nothing: its outcome is unknown, and the ledger fail-stops.
- Up to ``max_in_flight`` requests are in flight per connection; beyond that the frames already read wait and
  the connection reads nothing more (``pause_reading``) until answers free slots.
- An :class:`~core_ledger.hostcore.Aside` is answered on its own: at once, or after a rule's delay (a connection
  timer, cancelled when the connection goes), once its own batch is durable.
- A CLOSE rule stops reading; the connection closes once the requests in flight on it are answered. So does a
  peer that ends its side of the connection (a half-close, :class:`acqkit.frameprotocol.AnswersAfterInput`): it
  gets every answer it is owed, then the end — as on the task path.
- Idle and send timeouts, framing errors and the graceful close are the runtime's (``serve_frames``). A request
  whose connection goes before it is answered is no longer in flight (its records are committed all the same).
  When the server is cancelled, requests whose batches were not written get no answer, as on the task path (not
  the 96 of a fail-stop: :attr:`core_ledger.service.LedgerService.stopping`).
"""

from __future__ import annotations

import logging
import time
from collections import deque

from acqkit.frameprotocol import FrameConnection, SessionFactory
from core_ledger.hostcore import CLOSE, Aside, HostCore, Queued
from core_ledger.service import Pending

log = logging.getLogger("acqsim.ledger")


class LedgerSession:
    """One host-link connection's requests on the callback path (see the module)."""

    __slots__ = ("_closing", "_gone", "_held", "_queue", "_used", "_watching", "conn", "core", "max_in_flight")

    def __init__(self, conn: FrameConnection, core: HostCore, max_in_flight: int) -> None:
        self.conn, self.core, self.max_in_flight = conn, core, max_in_flight
        self._queue: deque[Queued] = deque()  # decided, answered in this order once durable
        self._used = 0  # requests in flight on this connection (queued and aside)
        self._held: list[bytes] | None = None  # frames read while every slot was taken (reading paused meanwhile)
        self._watching = False  # a release callback is registered on the head's batch
        self._closing = False  # a CLOSE rule or a half-close: close once nothing is in flight
        self._gone = False

    # -- FrameSession ----------------------------------------------------------------------------------------

    def frames_received(self, frames: list[bytes]) -> None:
        if self._closing:  # a CLOSE rule: nothing more is read
            return
        if self._held is not None:  # every slot is taken: these wait behind the held ones
            self._held.extend(frames)
            return
        self._read(frames)
        self._pump()

    def input_ended(self) -> bool:
        """The peer sent everything (a half-close): answer what it is owed, then close (see :meth:`_pump`)."""
        self._closing = True
        return bool(self._used or self._held)

    def connection_closed(self, error: BaseException | None) -> None:
        self._gone = True  # its delayed asides' timers went with it; its batches' callbacks now do nothing
        self.core.in_flight.leave(self._used)
        self._used = 0
        self._queue.clear()
        self._held = None

    # -- inside ------------------------------------------------------------------------------------------------

    def _read(self, frames: list[bytes]) -> None:
        """Decide the frames in order while slots are free; hold the rest (reading paused)."""
        core, peer = self.core, self.conn.peer
        for index, payload in enumerate(frames):
            if self._used >= self.max_in_flight:
                self._held = frames[index:]
                self.conn.pause_reading()
                return
            step = core.read(payload, peer)
            if step is None:
                continue
            if step is CLOSE:  # the rest of what was read is dropped with the connection
                self._closing = True
                self.conn.pause_reading()
                return
            self._used += 1
            if isinstance(step, Queued):
                self._queue.append(step)
            elif isinstance(step, Aside):
                if step.delay_s:
                    self.conn.call_later(step.delay_s, self._aside_due_later, step)
                else:
                    self._aside_due(step)

    def _pump(self) -> None:
        """Answer what is durable, read what was held while slots are free, and close after a CLOSE rule."""
        while True:
            self._answer_ready()
            held = self._held
            if held is None or self._used >= self.max_in_flight or self._gone:
                break
            self._held = None
            self.conn.resume_reading()
            self._read(held)
        if self._closing and not self._used:
            self.conn.close()

    def _answer_ready(self) -> None:
        """Answer the head of the queue while durable, in one write; watch the first batch that is not."""
        queue = self._queue
        ready: list[Queued] = []
        while queue:
            ticket = queue[0].pending.ticket
            if ticket is None or ticket.done.is_set():
                ready.append(queue.popleft())
            elif ticket.released:  # past the commit deadline, not written: the outcome is unknown
                queue.popleft()
                self.core.unknown_outcome(self.conn.peer)
                self._done(1)
            else:
                if not self._watching:
                    self._watching = True
                    ticket.when_released(self._head_released)
                break
        if ready:
            self.conn.send_many(self.core.answers(ready, self.conn.peer))
            self._done(len(ready))

    def _head_released(self) -> None:
        """The group commit released the batch at the head of the queue (called by its flusher)."""
        self._watching = False
        if not self._gone and not self.core.ledger.stopping:  # stopping: the server is shutting down, no 96
            self._guarded_pump()

    def _aside_due(self, aside: Aside) -> None:
        """Answer an aside now, or post it and answer it once its batch is durable."""
        core = self.core
        answer = core.scripted(aside)
        if answer is not None:
            self._send_aside(aside, core.answer(aside.fields, answer, self.conn.peer, aside.hit))
            return
        assert aside.request is not None
        pending = core.ledger.enqueue(aside.request)
        queued_at = time.perf_counter()
        ticket = pending.ticket
        if ticket is None or ticket.released:
            self._settle_aside(aside, pending, queued_at)
        else:
            ticket.when_released(lambda: self._aside_released(aside, pending, queued_at))

    def _aside_due_later(self, aside: Aside) -> None:
        """A rule's delay is over (a connection timer: not called once the connection has gone)."""
        self._aside_due(aside)
        self._pump()

    def _aside_released(self, aside: Aside, pending: Pending, queued_at: float) -> None:
        if not self._gone and not self.core.ledger.stopping:
            self._settle_aside(aside, pending, queued_at)
            self._guarded_pump()

    def _settle_aside(self, aside: Aside, pending: Pending, queued_at: float) -> None:
        core = self.core
        if pending.ticket is not None and not pending.ticket.done.is_set():
            core.unknown_outcome(self.conn.peer)
            self._done(1)
            return
        core.commit_seconds.observe(time.perf_counter() - queued_at)
        answer = core.ledger.settled(pending)
        self._send_aside(aside, core.answer(aside.fields, answer, self.conn.peer, aside.hit))

    def _send_aside(self, aside: Aside, encoded: bytes) -> None:
        self.conn.send(encoded)
        if aside.twice:
            self.conn.send(encoded)
        self._done(1)

    def _done(self, count: int) -> None:
        self._used -= count
        self.core.in_flight.leave(count)

    def _guarded_pump(self) -> None:
        """:meth:`_pump` from the group commit's flusher: a failure closes this connection only."""
        try:
            self._pump()
        except Exception:
            log.exception("ledger: answering %s failed; closing that connection only", self.conn.peer)
            self.conn.abort()


def session_factory(core: HostCore, max_in_flight: int) -> SessionFactory:
    """The sessions :func:`acqkit.frameprotocol.serve_frames` gives each connection."""

    def open_session(conn: FrameConnection) -> LedgerSession:
        return LedgerSession(conn, core, max_in_flight)

    return open_session
