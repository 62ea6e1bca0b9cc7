"""Thin anyio shell around :class:`hsm_sim.processor.HsmProcessor`: one task per connection, answers in
request order. A framing error closes only that connection."""

from __future__ import annotations

import dataclasses
import functools
import logging
from typing import Final

import anyio
import anyio.abc

from acqkit.metrics import HSM_COMMANDS
from acqkit.netio import FramedConnection, serve_tcp
from acqkit.serving import PLAIN, Serving
from hsm_sim.audit import AuditLog
from hsm_sim.keys import Lmk
from hsm_sim.policy import ANONYMOUS, ClientPolicy
from hsm_sim.processor import COMMAND_LEN, HEADER_LEN, HsmProcessor, Outcome, response_code
from wire.trace import TraceWriter

log = logging.getLogger("acqsim.hsm")

#: A client connection that sends nothing for this long is closed.
IDLE_TIMEOUT_S: Final = 300.0
#: An answer the client does not take within this long ends the connection (a stuck reader).
SEND_TIMEOUT_S: Final = 5.0
#: Largest request payload accepted; a longer length prefix closes the connection (M6/M8 messages
#: therefore carry at most about 4000 bytes of data).
MAX_FRAME_LEN: Final = 4096


async def serve(
    host: str,
    port: int,
    *,
    lmk: Lmk,
    trace: TraceWriter | None = None,
    serving: Serving = PLAIN,
    allowed_clients: ClientPolicy | None = None,
    audit: AuditLog | None = None,
    processor: HsmProcessor | None = None,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled. ``trace`` (optional) records header, command and error code of each message —
    never a field value. ``allowed_clients`` (default: the front-end only) is enforced on verified identities;
    with TLS on, an identity is required. ``audit`` (optional) records every command and refused connection."""
    processor = processor if processor is not None else HsmProcessor(lmk)
    tracer = trace if trace is not None and trace.enabled else None
    policy = allowed_clients if allowed_clients is not None else ClientPolicy()
    if serving.server_tls is not None:
        policy = dataclasses.replace(policy, require_identity=True)
    if not policy.require_identity:
        log.warning("HSM on plain TCP: every client is anonymous and allowed (allowed_clients needs tls = true)")

    def respond(request: bytes, client: str, identity: str | None, peer: str) -> bytes:
        command = request[HEADER_LEN : HEADER_LEN + COMMAND_LEN].decode("ascii", "replace")
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
        HSM_COMMANDS.labels(service="hsm", command=outcome.command, error=outcome.answered.value).inc()
        return reply

    async def handle(conn: FramedConnection) -> None:
        identity = conn.peer_identity
        client = identity if identity is not None else ANONYMOUS
        if not policy.admits(identity):
            log.warning("HSM connection from %s (%s) refused: not an allowed client", conn.peer, client)
            if audit is not None:
                audit.refused(client, conn.peer, "not an allowed client")
            return
        while (payload := await conn.receive(IDLE_TIMEOUT_S)) is not None:
            # Commands are answered in order; all that arrived together are answered in one write.
            requests = [payload, *conn.buffered_frames()]
            answers = [respond(request, client, identity, conn.peer) for request in requests]
            if tracer is not None:
                for request, answer in zip(requests, answers, strict=True):
                    tracer.record(direction="in", link="hsm", peer=conn.peer, payload=request)
                    tracer.record(direction="out", link="hsm", peer=conn.peer, payload=answer)
            with anyio.fail_after(SEND_TIMEOUT_S):
                await conn.send_many(answers)

    async with anyio.create_task_group() as tg:
        if audit is not None:
            tg.start_soon(audit.run_flusher)
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
