"""Thin anyio shell around :mod:`frontend.core`: decodes each frame once, runs the core's flow with the
effects carried out by :mod:`frontend.interpreter`, and sends the answer.

Frames on one connection are processed concurrently (the NAC multiplexes many terminals on one link), up to
``MAX_IN_FLIGHT_PER_CONNECTION``; each answer goes back as soon as it is ready. The reversal forwarder
(:mod:`frontend.forwarder`) runs beside the connections.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
from typing import Any, Final

import anyio
import anyio.abc

from acqkit.groupcommit import CommitFailed, GroupCommit
from acqkit.netio import FramedConnection, acquire_slot, serve_tcp
from acqkit.serving import PLAIN, Serving
from core_ledger.api import LedgerRequest
from core_ledger.client import LedgerClient
from frontend.core import Context, Reply, answer_header, inbound, malfunction_reply, process, reversal_of
from frontend.effects import AskLedger, AskScheme, NextRrn, QueueReversal
from frontend.flows.faults import FaultPlan, plan_for_fault
from frontend.forwarder import ReversalForwarder
from frontend.interpreter import Interpreter
from frontend.journal import Journal
from frontend.journal_ops import JournalCall
from frontend.recovery import settle_unsettled
from hsm_sim.client import HsmClient
from scheme.client import SwitchLinkClient
from wire.errors import WireError
from wire.posframe import PosFrame
from wire.posmessage import PosMessage
from wire.trace import TraceWriter

log = logging.getLogger("acqsim.frontend")

MAX_IN_FLIGHT_PER_CONNECTION: Final = 256
IDLE_TIMEOUT_S: Final = 600.0
#: What a failing or hung journal raises to a flow.
JOURNAL_FAILURES: Final = (CommitFailed, sqlite3.Error, TimeoutError)


class Frontend:
    def __init__(
        self,
        ctx: Context,
        journal: Journal,
        hsm: HsmClient,
        ledger: LedgerClient,
        *,
        trace: TraceWriter | None = None,
        scheme: SwitchLinkClient | None = None,
    ) -> None:
        """``scheme``: the link to the scheme switch for off-us cards (with ``ctx.scheme``, the BIN table)."""
        self.ctx, self.journal, self.ledger = ctx, journal, ledger
        self.trace = trace if trace is not None and trace.enabled else None
        self.forwarder = ReversalForwarder(journal, ledger, scheme=scheme, route=ctx.scheme)
        self.effects = Interpreter(
            journal, hsm, ledger, trace=self.trace, reversal_queued=self.forwarder.wake, scheme=scheme
        )
        self.answered = 0

    @property
    def journal_writes(self) -> GroupCommit[JournalCall, Any]:
        return self.effects.journal_writes

    async def answer(self, payload: bytes) -> bytes | None:
        try:
            frame = PosFrame.parse(payload)
        except WireError as exc:
            log.warning("dropping a frame: %s", exc)
            return None
        request = inbound(frame)
        correlation = request.correlation_id if isinstance(request, PosMessage) else None
        if self.trace is not None:
            self.trace.record(direction="in", link="pos", peer="nac", payload=payload, correlation_id=correlation)
        reply = request if isinstance(request, Reply) else await self._run(request, correlation)
        log.info("%s", reply.note)
        if reply.body is None:
            return None
        self.answered += 1
        answer = frame.answer(reply.body, header=answer_header(frame, reply)).to_bytes()
        if self.trace is not None:
            self.trace.record(
                direction="out", link="pos", peer="nac", payload=answer, correlation_id=correlation, note=reply.note
            )
        return answer

    async def _run(self, request: PosMessage, correlation: str | None) -> Reply:
        """The core's flow for ``request``, each effect carried out; a fault of our own costs this request only."""
        flow = process(request, self.ctx)
        asked: LedgerRequest | None = None  # the request the ledger was asked, if it was
        try:
            effect = next(flow)
            while True:
                if isinstance(effect, AskLedger | AskScheme):
                    asked = effect.request
                effect = flow.send(await self.effects.carry_out(effect, correlation))
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        except JOURNAL_FAILURES as exc:
            why, plan = "journal failed", plan_for_fault(asked, journal_failed=True)
            log.error("journal failed (%s): %s", plan.value, exc)  # noqa: TRY400 - the cause, no payload
        except Exception:
            why, plan = "front-end fault", plan_for_fault(asked, journal_failed=False)
            log.exception("transaction failed inside the front-end (%s)", plan.value)
        if plan is FaultPlan.NO_ANSWER:
            return Reply(body=None, note=f"no answer: {why} after the ledger was asked")
        if plan is FaultPlan.REVERSE_AND_ANSWER_96 and asked is not None:
            await self._queue_unknown(asked, request.mti)
        return malfunction_reply(request, self.ctx, why)

    async def _queue_unknown(self, asked: LedgerRequest, mti: str) -> None:
        """Store a reversal of ``asked``, whose outcome at the ledger is unknown (store-and-forward)."""
        try:
            rrn = await self.effects.carry_out(NextRrn())
            await self.effects.carry_out(QueueReversal(reversal_of(asked, mti, rrn)))
        except Exception:
            log.exception("could not queue the reversal of STAN %s; the terminal's reversal must undo it", asked.stan)

    async def handle(self, conn: FramedConnection) -> None:
        slots = anyio.Semaphore(MAX_IN_FLIGHT_PER_CONNECTION)

        async def one(payload: bytes) -> None:
            try:
                answer = await self.answer(payload)
                if answer is not None:
                    await conn.send(answer)
            finally:
                slots.release()

        async with anyio.create_task_group() as tg:
            while (payload := await conn.receive(IDLE_TIMEOUT_S)) is not None:
                await acquire_slot(slots)
                tg.start_soon(one, payload)


async def serve(
    host: str,
    port: int,
    *,
    frontend: Frontend,
    serving: Serving = PLAIN,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    async with anyio.create_task_group() as tg:
        await tg.start(frontend.journal_writes.run_flusher)
        # what a crash left pending, before any new traffic
        await settle_unsettled(frontend.journal, frontend.journal_writes, frontend.ledger, route=frontend.ctx.scheme)
        tg.start_soon(frontend.forwarder.run)
        bound = await tg.start(
            functools.partial(
                serve_tcp,
                host,
                port,
                frontend.handle,
                name="frontend",
                max_connections=serving.max_connections,
                tls=serving.server_tls,
            )
        )
        task_status.started(bound)
