"""The HSM's rules for what one read brought in, sans-IO: commands in → the answers to write now, whether the
connection closes, and the commands to answer later, as data. Both shells call it (``hsm_sim/taskshell.py``
on trio and under TLS, ``hsm_sim/callbackshell.py`` on asyncio): the client policy, the scripted rules
(answer / drop / close / delay / answer twice: docs/rules.md), the processor, the audit log, the command
counters, the traces, the transaction log and the request trailer live here once.

Commands are answered in order; a CLOSE rule leaves that command and those after it in the read unanswered (the
answers before it are written, then the connection closes); a DELAY rule's command is answered
``delay_s`` later by :meth:`BatchAnswerer.answer_late`, the others going on meanwhile (the client matches
answers by header)."""

from __future__ import annotations

import dataclasses
import functools
import logging
from typing import Final

from prometheus_client import Counter

from acqkit import txnlog
from acqkit.metrics import HSM_COMMANDS
from acqkit.rules import ActionKind, Hit, RuleBook, hit_note, hsm_message
from hsm_sim.audit import AuditLog
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


@dataclasses.dataclass(frozen=True, slots=True)
class Client:
    """Who a connection serves: the verified identity (``None`` on plain TCP), the name the policy, rules and
    audit know it by, and the peer address for logs and traces."""

    identity: str | None
    peer: str
    name: str = ANONYMOUS

    @classmethod
    def of(cls, identity: str | None, peer: str) -> Client:
        return cls(identity, peer, identity if identity is not None else ANONYMOUS)


@dataclasses.dataclass(frozen=True, slots=True)
class LateAnswer:
    """A command a DELAY rule holds: processed and answered ``delay_s`` after it was read."""

    request: bytes
    trailer: bytes
    delay_s: float


@dataclasses.dataclass(frozen=True, slots=True)
class Batch:
    """What to do about one read: write ``answers`` (in one write), schedule ``late``, then close if ``close``."""

    answers: list[bytes]
    close: bool = False
    late: tuple[LateAnswer, ...] = ()


class BatchAnswerer:
    """One HSM's rules over its connections (see the module)."""

    def __init__(
        self,
        processor: HsmProcessor,
        *,
        policy: ClientPolicy,
        audit: AuditLog | None = None,
        rules: RuleBook | None = None,
        tracer: TraceWriter | None = None,
    ) -> None:
        self.processor = processor
        self.policy = policy
        self.audit = audit
        self.rules = rules
        self.tracer = tracer if tracer is not None and tracer.enabled else None

    def admits(self, client: Client) -> bool:
        """Whether the policy serves this client at all (a refusal is logged and audited)."""
        if self.policy.admits(client.identity):
            return True
        log.warning("HSM connection from %s (%s) refused: not an allowed client", client.peer, client.name)
        if self.audit is not None:
            self.audit.refused(client.name, client.peer, "not an allowed client")
        return False

    def answer(self, frames: list[bytes], client: Client) -> Batch:
        """The answers to the commands of one read, in order (see the module for CLOSE and DELAY)."""
        tracer = self.tracer
        answers: list[bytes] = []
        late: list[LateAnswer] | None = None
        close = False
        for framed in frames:
            request, trailer = split_trailer(framed)
            hit = self._match(request, client)
            if tracer is not None:
                tracer.record(direction="in", link="hsm", peer=client.peer, payload=request, note=hit_note(hit))
            kind = hit.action.kind if hit is not None else None
            if kind is ActionKind.CLOSE:
                log.info("closing the connection of %s (%s): a rule says so", client.peer, client.name)
                close = True  # this command and those after it in the read go unanswered
                break
            if kind is ActionKind.DROP:
                continue
            if kind is ActionKind.DELAY:
                assert hit is not None
                late = late if late is not None else []
                late.append(LateAnswer(request, trailer, hit.action.delay_s))
                continue
            if kind is ActionKind.ANSWER:
                assert hit is not None
                answer = scripted_answer(request, hit.action.code or "")
            else:
                answer = self._respond(request, client)
            answer = self._logged(answer, trailer, hit)
            answers.append(answer)
            if kind is ActionKind.ANSWER_TWICE:
                answers.append(answer)
            if tracer is not None:
                tracer.record(direction="out", link="hsm", peer=client.peer, payload=answer)
        return Batch(answers, close, tuple(late) if late is not None else ())

    def answer_late(self, held: LateAnswer, client: Client) -> bytes:
        """The answer to a command a DELAY rule held, processed now."""
        answer = self._logged(self._respond(held.request, client), held.trailer, None)
        if self.tracer is not None:
            self.tracer.record(direction="out", link="hsm", peer=client.peer, payload=answer)
        return answer

    def _respond(self, request: bytes, client: Client) -> bytes:
        # A connection without an identity is served only where the policy admits anonymous clients, and
        # those may send every command (ClientPolicy.authorise): the command is read here only for the others.
        identity = client.identity
        command = "" if identity is None else request[HEADER_LEN : HEADER_LEN + COMMAND_LEN].decode("ascii", "replace")
        refused = self.policy.authorise(identity, command) if len(command) == COMMAND_LEN else None
        if refused is not None:
            log.warning("%s answered %s: not permitted for %s", command, refused.value, client.name)
            header = request[:HEADER_LEN].decode("ascii", "replace")
            outcome = Outcome(command, refused, refused, reason="command not permitted for this client")
            reply = (header + response_code(command) + refused.value).encode("ascii", "replace")
        else:
            reply, outcome = self.processor.process(request, client.name)
        if self.audit is not None:
            self.audit.record(client.name, client.peer, outcome)
        _command_counter(outcome.command, outcome.answered).inc()  # a StrEnum: its value as the label
        return reply

    @staticmethod
    def _logged(answer: bytes, trailer: bytes, hit: Hit | None) -> bytes:
        """The answer with the request's trailer, its transaction record logged (:mod:`acqkit.txnlog`)."""
        if not txnlog.enabled():  # the usual case: nothing to read out of the answer
            return answer + trailer
        head = answer[HEADER_LEN : HEADER_LEN + COMMAND_LEN + ERROR_CODE_LEN].decode("ascii", "replace")
        command = request_code(head[:COMMAND_LEN])
        error = head[COMMAND_LEN:]
        txnlog.log_transaction("hsm", trailer_txn(trailer), command=command, code=error, note=hit_note(hit))
        return answer + trailer

    def _match(self, request: bytes, client: Client) -> Hit | None:
        if self.rules is None:
            return None
        command = request[HEADER_LEN : HEADER_LEN + COMMAND_LEN].decode("ascii", "replace")
        hit = self.rules.match(hsm_message(command, client.name))
        if hit is not None:
            log.info("rule %d (%s): %s on %s", hit.number, hit.rule, hit.action.kind, command)
        return hit
