"""The HSM's shell around :class:`hsm_sim.processor.HsmProcessor`: answers in request order; a framing error
closes only that connection.

Two paths, one set of rules (:class:`hsm_sim.batch.BatchAnswerer`): on asyncio without TLS the connections are
protocol callbacks (``hsm_sim/callbackshell.py`` on :mod:`acqkit.frameprotocol`: no task per connection or
command); on trio, and under TLS, a task per connection (``hsm_sim/taskshell.py`` on :mod:`acqkit.netio`).

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

from acqkit.frameprotocol import callbacks_apply, serve_frames
from acqkit.netio import serve_tcp
from acqkit.rules import RuleBook
from acqkit.serving import PLAIN, Serving
from acqkit.traceflush import flush_traces
from hsm_sim.api import PASSPHRASE_ENV, passphrase_file_for
from hsm_sim.audit import AuditLog
from hsm_sim.batch import BatchAnswerer
from hsm_sim.callbackshell import session_factory
from hsm_sim.keys import Lmk
from hsm_sim.lmk_store import open_or_create_lmk, read_passphrase_file
from hsm_sim.policy import ClientPolicy
from hsm_sim.processor import HsmProcessor
from hsm_sim.taskshell import Timeouts, task_handler
from wire.trace import TraceWriter

log = logging.getLogger("acqsim.hsm")

#: A client connection that sends nothing for this long is closed.
IDLE_TIMEOUT_S: Final = 300.0
#: An answer the client does not take within this long ends the connection (a stuck reader).
SEND_TIMEOUT_S: Final = 5.0
#: Largest request payload accepted; a longer length prefix closes the connection (M6/M8 messages
#: therefore carry at most about 4000 bytes of data).
MAX_FRAME_LEN: Final = 4096
#: How often at most a busy connection's deadline is pushed back (the task path's one cancel scope).
DEADLINE_SLACK_S: Final = 1.0


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
    answerer = BatchAnswerer(processor, policy=policy, audit=audit, rules=rules, tracer=tracer)
    if callbacks_apply(serving.server_tls):
        server = functools.partial(
            serve_frames,
            host,
            port,
            session_factory(answerer),
            name="hsm",
            max_frame_len=MAX_FRAME_LEN,
            max_connections=serving.max_connections,
            idle_timeout=IDLE_TIMEOUT_S,
            send_timeout=SEND_TIMEOUT_S,
        )
    else:
        timeouts = Timeouts(idle_s=IDLE_TIMEOUT_S, send_s=SEND_TIMEOUT_S, slack_s=DEADLINE_SLACK_S)
        server = functools.partial(
            serve_tcp,
            host,
            port,
            task_handler(answerer, timeouts),
            name="hsm",
            max_frame_len=MAX_FRAME_LEN,
            max_connections=serving.max_connections,
            tls=serving.server_tls,
        )
    async with anyio.create_task_group() as tg:
        if audit is not None:
            tg.start_soon(audit.run_flusher)
        if tracer is not None:
            await tg.start(flush_traces, tracer)
        task_status.started(await tg.start(server))


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
