"""The HSM's task path (trio, and TLS on either backend): one task per connection on :mod:`acqkit.netio`, each
read's commands answered through :class:`hsm_sim.batch.BatchAnswerer`, delayed answers in a task group of the
connection's own (cancelled when it ends, except after a half-close: the client still gets the delayed answers it
is owed, then the end)."""

from __future__ import annotations

import dataclasses
import logging

import anyio
import anyio.abc

from acqkit.netio import ConnectionHandler, FramedConnection
from acqkit.writedeadline import push_deadline
from hsm_sim.batch import BatchAnswerer, Client, LateAnswer

log = logging.getLogger("acqsim.hsm")

#: What :meth:`_ConnectionClock.expired` says of a connection closed for want of requests.
IDLE = "idle"
#: ... and of one whose client did not take an answer in time.
SEND = "send"


@dataclasses.dataclass(frozen=True, slots=True)
class Timeouts:
    """A connection's idle timeout, send timeout, and how often at most a busy connection's deadline moves."""

    idle_s: float
    send_s: float
    slack_s: float


class _ConnectionClock:
    """A connection's idle timeout (no request for ``idle_s``) and send timeout (an answer not taken within
    ``send_s``), kept in one cancel scope whose deadline is moved at most once per ``slack_s`` — not twice per
    batch of answers (moving a deadline costs about as much as a small read).

    Each read leaves the deadline at least ``send_s`` (and at most ``send_s + slack_s``) after it, so the write
    of the answers to what it read gets ``send_s``, less the time the commands took. When the deadline passes
    during a write, the send timed out; when it passes while waiting for a request, it was early: the caller
    reads on under a new scope whose deadline is ``idle_s`` after the last request (:meth:`expired`).
    Cancelling a wait for data loses nothing (what arrives stays buffered). An idle connection is closed
    ``idle_s`` after its last request, or ``send_s + 2 × slack_s`` if that is longer."""

    __slots__ = ("last_read", "scope", "sending", "timeouts")

    def __init__(self, timeouts: Timeouts) -> None:
        self.timeouts = timeouts
        self.last_read = anyio.current_time()
        self.sending = False
        self.scope = anyio.CancelScope(deadline=self.last_read + timeouts.idle_s)

    def request_read(self) -> None:
        self.last_read = anyio.current_time()
        push_deadline(self.scope, self.timeouts.send_s, self.timeouts.slack_s)

    def expired(self) -> str:
        """After the scope's deadline passed: ``SEND`` or ``IDLE`` if that timeout is reached, else ``""``
        with a new :attr:`scope` to read on under."""
        if self.sending:
            return SEND
        if anyio.current_time() - self.last_read >= self.timeouts.idle_s:
            return IDLE
        self.scope = anyio.CancelScope(deadline=self.last_read + self.timeouts.idle_s)
        return ""


def task_handler(answerer: BatchAnswerer, timeouts: Timeouts) -> ConnectionHandler:
    """The per-connection handler :func:`acqkit.netio.serve_tcp` runs."""

    async def handle(conn: FramedConnection) -> None:
        client = Client.of(conn.peer_identity, conn.peer)
        if not answerer.admits(client):
            return
        clock = _ConnectionClock(timeouts)
        timed_out = ""
        async with anyio.create_task_group() as late:  # delayed answers; cancelled when the connection ends
            input_ended = False
            while True:
                with clock.scope:
                    input_ended = await answer_all(conn, client, late, clock)
                if not clock.scope.cancelled_caught:
                    break  # the client ended its side, or a rule closed the connection
                timed_out = clock.expired()
                if timed_out:
                    break
                # The scope's early deadline passed while waiting for a request: read on under a new one.
            if not input_ended:
                late.cancel_scope.cancel()
            # else a half-close: the delayed answers still owed go out (each within the send timeout), then the end
        if timed_out == IDLE:
            log.info("HSM connection from %s (%s) idle for %.0f s: closed", conn.peer, client.name, timeouts.idle_s)
        elif timed_out:
            raise TimeoutError(f"answers to {conn.peer} not taken within {timeouts.send_s:g} s")

    async def answer_all(
        conn: FramedConnection, client: Client, late: anyio.abc.TaskGroup, clock: _ConnectionClock
    ) -> bool:
        """Answer the connection's commands until the client ends its side (``True``), a rule closes the connection
        (``False``), or the deadline passes."""
        while (payload := await conn.receive()) is not None:
            clock.request_read()
            batch = answerer.answer([payload, *conn.buffered_frames()], client)  # all that arrived together
            for held in batch.late:
                late.start_soon(answer_late, conn, client, held)
            if batch.answers:
                clock.sending = True
                await conn.send_many(batch.answers)
                clock.sending = False
            if batch.close:
                return False
        return True

    async def answer_late(conn: FramedConnection, client: Client, held: LateAnswer) -> None:
        await anyio.sleep(held.delay_s)
        answer = answerer.answer_late(held, client)
        try:
            with anyio.fail_after(timeouts.send_s):
                await conn.send(answer)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, TimeoutError) as exc:
            log.info("a delayed answer to %s was not delivered: %s", conn.peer, type(exc).__name__)

    return handle
