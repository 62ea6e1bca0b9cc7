"""Thin anyio shell around :class:`hsm_sim.processor.HsmProcessor`: one task per connection, answers in
request order. A framing error closes only that connection.

With ``rules`` (:mod:`acqkit.rules`, ``at = "hsm"``) a command can be answered with a scripted error code
(not processed), delayed (answered later, out of order: the client matches answers by header, and the other
commands on the connection go on), dropped, answered twice, or can close its connection."""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
from pathlib import Path
from typing import Final

import anyio
import anyio.abc
import anyio.to_thread
from prometheus_client import Counter

from acqkit import txnlog
from acqkit.metrics import HSM_COMMANDS
from acqkit.netio import FramedConnection, serve_tcp
from acqkit.rules import ActionKind, Hit, RuleBook, hit_note, hsm_message
from acqkit.serving import PLAIN, Serving
from acqkit.traceflush import flush_traces
from acqkit.writedeadline import push_deadline
from hsm_sim.api import PASSPHRASE_ENV, passphrase_file_for
from hsm_sim.audit import AuditLog
from hsm_sim.keys import Lmk
from hsm_sim.lmk_store import open_or_create_lmk, read_passphrase_file
from hsm_sim.policy import ANONYMOUS, ClientPolicy
from hsm_sim.processor import (
    COMMAND_LEN,
    HEADER_LEN,
    UNREADABLE_COMMAND,
    UNREADABLE_RESPONSE,
    HsmProcessor,
    Outcome,
    response_code,
)
from hsm_sim.trailer import split_trailer, trailer_txn
from wire.trace import TraceWriter

log = logging.getLogger("acqsim.hsm")

#: A client connection that sends nothing for this long is closed.
IDLE_TIMEOUT_S: Final = 300.0
#: An answer the client does not take within this long ends the connection (a stuck reader).
SEND_TIMEOUT_S: Final = 5.0
#: Largest request payload accepted; a longer length prefix closes the connection (M6/M8 messages
#: therefore carry at most about 4000 bytes of data).
MAX_FRAME_LEN: Final = 4096


#: The error code after the response code of an answer.
ERROR_CODE_LEN: Final = 2


@functools.lru_cache(maxsize=1024)
def _command_counter(command: str, error: str) -> Counter:
    """The metric's child for a command and error code, looked up once (``labels`` costs more than ``inc``)."""
    return HSM_COMMANDS.labels(service="hsm", command=command, error=error)


def request_code(reply: str) -> str:
    """The command an answer's response code answers: M9 → M8 (the reverse of ``response_code``)."""
    if reply == UNREADABLE_RESPONSE or len(reply) != COMMAND_LEN:
        return UNREADABLE_COMMAND
    return reply[0] + chr(ord(reply[1]) - 1)


def scripted_answer(request: bytes, code: str) -> bytes:
    """The answer a rule scripts: the request's header, the command's response code, the rule's error code."""
    header = request[:HEADER_LEN].decode("ascii", "replace")
    command = request[HEADER_LEN : HEADER_LEN + COMMAND_LEN].decode("ascii", "replace")
    reply = response_code(command) if len(command) == COMMAND_LEN else UNREADABLE_RESPONSE
    return (header + reply + code).encode("ascii", "replace")


#: How often at most a busy connection's deadline is pushed back (see :class:`_ConnectionClock`).
DEADLINE_SLACK_S: Final = 1.0
#: What :meth:`_ConnectionClock.expired` says of a connection closed for want of requests.
IDLE: Final = "idle"
#: ... and of one whose client did not take an answer in time.
SEND: Final = "send"


class _ConnectionClock:
    """A connection's idle timeout (no request for ``IDLE_TIMEOUT_S``) and send timeout (an answer not taken
    within ``SEND_TIMEOUT_S``), kept in one cancel scope whose deadline is moved at most once per
    ``DEADLINE_SLACK_S`` — not twice per batch of answers (moving a deadline costs about as much as a small
    read).

    Each read leaves the deadline at least ``SEND_TIMEOUT_S`` (and at most ``SEND_TIMEOUT_S +
    DEADLINE_SLACK_S``) after it, so the write of the answers to what it read gets ``SEND_TIMEOUT_S``, less the
    time the commands took, as before. When the deadline passes during a write, the send
    timed out; when it passes while waiting for a request, it was early: the caller reads on under a new scope
    whose deadline is ``IDLE_TIMEOUT_S`` after the last request (:meth:`expired`). Cancelling a wait for
    data loses nothing (what arrives stays buffered). An idle connection is closed ``IDLE_TIMEOUT_S`` after
    its last request, or ``SEND_TIMEOUT_S + 2 × DEADLINE_SLACK_S`` if that is longer."""

    __slots__ = ("last_read", "scope", "sending")

    def __init__(self) -> None:
        self.last_read = anyio.current_time()
        self.sending = False
        self.scope = anyio.CancelScope(deadline=self.last_read + IDLE_TIMEOUT_S)

    def request_read(self) -> None:
        self.last_read = anyio.current_time()
        push_deadline(self.scope, SEND_TIMEOUT_S, DEADLINE_SLACK_S)

    def expired(self) -> str:
        """After the scope's deadline passed: ``SEND`` or ``IDLE`` if that timeout is reached, else ``""``
        with a new :attr:`scope` to read on under."""
        if self.sending:
            return SEND
        if anyio.current_time() - self.last_read >= IDLE_TIMEOUT_S:
            return IDLE
        self.scope = anyio.CancelScope(deadline=self.last_read + IDLE_TIMEOUT_S)
        return ""


async def serve(
    host: str,
    port: int,
    *,
    lmk: Lmk | None = None,
    trace: TraceWriter | None = None,
    serving: Serving = PLAIN,
    allowed_clients: ClientPolicy | None = None,
    audit: AuditLog | None = None,
    processor: HsmProcessor | None = None,
    allow_clear_import: bool = False,
    rules: RuleBook | None = None,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled. ``trace`` (optional) records header, command and error code of each message —
    never a field value. ``allowed_clients`` (default: the front-end only) is enforced on verified identities;
    with TLS on, an identity is required. ``audit`` (optional) records every command and refused connection.
    ``allow_clear_import`` enables A4 (clear key components; TEST key ceremonies only). ``rules``: scripted
    answers and faults (docs/rules.md)."""
    if processor is None:
        if lmk is None:
            raise ValueError("serve needs an lmk or a processor")
        processor = HsmProcessor(lmk, allow_clear_import=allow_clear_import)
    tracer = trace if trace is not None and trace.enabled else None
    policy = allowed_clients if allowed_clients is not None else ClientPolicy()
    if serving.server_tls is not None:
        policy = dataclasses.replace(policy, require_identity=True)
    if not policy.require_identity:
        log.warning("HSM on plain TCP: every client is anonymous and allowed (allowed_clients needs tls = true)")

    def respond(request: bytes, client: str, identity: str | None, peer: str) -> bytes:
        # A connection without an identity is served only where the policy admits anonymous clients, and
        # those may send every command (ClientPolicy.authorise): the command is read here only for the others.
        command = "" if identity is None else request[HEADER_LEN : HEADER_LEN + COMMAND_LEN].decode("ascii", "replace")
        refused = policy.authorise(identity, command) if len(command) == COMMAND_LEN else None
        if refused is not None:
            log.warning("%s answered %s: not permitted for %s", command, refused.value, client)
            header = request[:HEADER_LEN].decode("ascii", "replace")
            outcome = Outcome(command, refused, refused, reason="command not permitted for this client")
            reply = (header + response_code(command) + refused.value).encode("ascii", "replace")
        else:
            reply, outcome = processor.process(request, client)
        if audit is not None:
            audit.record(client, peer, outcome)
        _command_counter(outcome.command, outcome.answered).inc()  # a StrEnum: its value as the label
        return reply

    async def handle(conn: FramedConnection) -> None:
        identity = conn.peer_identity
        client = identity if identity is not None else ANONYMOUS
        if not policy.admits(identity):
            log.warning("HSM connection from %s (%s) refused: not an allowed client", conn.peer, client)
            if audit is not None:
                audit.refused(client, conn.peer, "not an allowed client")
            return
        clock = _ConnectionClock()
        timed_out = ""
        async with anyio.create_task_group() as late:  # delayed answers; cancelled when the connection ends
            while True:
                with clock.scope:
                    await answer_all(conn, (client, identity), late, clock)
                if not clock.scope.cancelled_caught:
                    break  # the client closed, or a rule closed the connection
                timed_out = clock.expired()
                if timed_out:
                    break
                # The scope's early deadline passed while waiting for a request: read on under a new one.
            late.cancel_scope.cancel()
        if timed_out == IDLE:
            log.info("HSM connection from %s (%s) idle for %.0f s: closed", conn.peer, client, IDLE_TIMEOUT_S)
        elif timed_out:
            raise TimeoutError(f"answers to {conn.peer} not taken within {SEND_TIMEOUT_S:g} s")

    async def answer_all(
        conn: FramedConnection, who: tuple[str, str | None], late: anyio.abc.TaskGroup, clock: _ConnectionClock
    ) -> None:
        """Answer the connection's commands until it closes, a rule closes it, or the deadline passes."""
        client, identity = who
        while (payload := await conn.receive()) is not None:
            clock.request_read()
            # Commands are answered in order; all that arrived together are answered in one write.
            answers: list[bytes] = []
            close = False
            for framed in [payload, *conn.buffered_frames()]:
                request, trailer = split_trailer(framed)
                hit = _match(request, client)
                if tracer is not None:
                    tracer.record(direction="in", link="hsm", peer=conn.peer, payload=request, note=hit_note(hit))
                kind = hit.action.kind if hit is not None else None
                if kind is ActionKind.CLOSE:
                    close = True  # this command and those after it in the batch go unanswered
                    break
                if kind is ActionKind.DROP:
                    continue
                if kind is ActionKind.DELAY:
                    assert hit is not None
                    late.start_soon(answer_late, conn, request, trailer, (client, identity), hit.action.delay_s)
                    continue
                if kind is ActionKind.ANSWER:
                    assert hit is not None
                    answer = scripted_answer(request, hit.action.code or "")
                else:
                    answer = respond(request, client, identity, conn.peer)
                answer = _logged(answer, trailer, hit)
                copies = 2 if kind is ActionKind.ANSWER_TWICE else 1
                answers += [answer] * copies
                if tracer is not None:
                    tracer.record(direction="out", link="hsm", peer=conn.peer, payload=answer)
            if answers:
                clock.sending = True
                await conn.send_many(answers)
                clock.sending = False
            if close:
                log.info("closing the connection of %s (%s): a rule says so", conn.peer, client)
                return

    def _logged(answer: bytes, trailer: bytes, hit: Hit | None) -> bytes:
        """The answer with the request's trailer, its transaction record logged (:mod:`acqkit.txnlog`)."""
        if not txnlog.enabled():  # the usual case: nothing to read out of the answer
            return answer + trailer
        head = answer[HEADER_LEN : HEADER_LEN + COMMAND_LEN + ERROR_CODE_LEN].decode("ascii", "replace")
        command = request_code(head[:COMMAND_LEN])
        error = head[COMMAND_LEN:]
        txnlog.log_transaction("hsm", trailer_txn(trailer), command=command, code=error, note=hit_note(hit))
        return answer + trailer

    def _match(request: bytes, client: str) -> Hit | None:
        if rules is None:
            return None
        command = request[HEADER_LEN : HEADER_LEN + COMMAND_LEN].decode("ascii", "replace")
        hit = rules.match(hsm_message(command, client))
        if hit is not None:
            log.info("rule %d (%s): %s on %s", hit.number, hit.rule, hit.action.kind, command)
        return hit

    async def answer_late(
        conn: FramedConnection, request: bytes, trailer: bytes, who: tuple[str, str | None], delay: float
    ) -> None:
        await anyio.sleep(delay)
        client, identity = who
        answer = _logged(respond(request, client, identity, conn.peer), trailer, None)
        if tracer is not None:
            tracer.record(direction="out", link="hsm", peer=conn.peer, payload=answer)
        try:
            with anyio.fail_after(SEND_TIMEOUT_S):
                await conn.send(answer)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, TimeoutError) as exc:
            log.info("a delayed answer to %s was not delivered: %s", conn.peer, type(exc).__name__)

    async with anyio.create_task_group() as tg:
        if audit is not None:
            tg.start_soon(audit.run_flusher)
        if tracer is not None:
            await tg.start(flush_traces, tracer)
        bound = await tg.start(
            functools.partial(
                serve_tcp,
                host,
                port,
                handle,
                name="hsm",
                max_frame_len=MAX_FRAME_LEN,
                max_connections=serving.max_connections,
                tls=serving.server_tls,
            )
        )
        task_status.started(bound)


def open_sealed_lmk(lmk_file: Path, *, create: bool) -> tuple[Lmk, bool]:
    """The LMK of ``lmk_file`` under the passphrase of ``$ACQSIM_LMK_PASSPHRASE`` or, when that is unset, of
    the passphrase file beside it (made with a random passphrase along with a new LMK file when ``create``).
    Raises ``LmkFileError``."""
    passphrase = os.environ.get(PASSPHRASE_ENV) or read_passphrase_file(
        passphrase_file_for(lmk_file), create=create and not lmk_file.exists()
    )
    return open_or_create_lmk(lmk_file, passphrase, create=create)


async def serve_sealed(
    host: str,
    port: int,
    *,
    lmk_file: Path,
    allow_clear_import: bool,
    trace: TraceWriter | None = None,
    serving: Serving = PLAIN,
    allowed_clients: ClientPolicy | None = None,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """:func:`serve` with the LMK opened from its sealed file (created with a random LMK at the first start)
    here, inside the HSM: for an in-process pipeline, whose caller never sees the LMK. ``serving`` and
    ``allowed_clients`` as :func:`serve` takes them (under TLS, only the allowed identities are admitted)."""
    lmk, _ = await anyio.to_thread.run_sync(functools.partial(open_sealed_lmk, lmk_file, create=True))
    await serve(
        host,
        port,
        lmk=lmk,
        trace=trace,
        serving=serving,
        allowed_clients=allowed_clients,
        allow_clear_import=allow_clear_import,
        task_status=task_status,
    )
