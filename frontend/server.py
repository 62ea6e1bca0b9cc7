"""Thin anyio shell around :mod:`frontend.core`: decodes each frame once, runs the core's flow with the
effects carried out by :mod:`frontend.interpreter`, and sends the answer.

Frames on one connection are processed concurrently (the NAC multiplexes many terminals on one link), up to
``MAX_IN_FLIGHT_PER_CONNECTION``; each answer goes back as soon as it is ready. Two paths, one set of rules: on
asyncio without TLS the NAC link is served from the event loop's callbacks and each flow stepped from them
(:mod:`frontend.callbackshell`); on trio, or with TLS, each connection is a task whose frames are handed to its
workers (:meth:`Frontend.handle`). Both read a frame with :meth:`Frontend.begin` and answer it with
:meth:`Frontend.finish`; the effects are :mod:`frontend.interpreter`'s either way. The reversal forwarder
(:mod:`frontend.forwarder`) runs beside the connections. With a rules file (``--rules``, :mod:`acqkit.rules`)
a matching request is answered by the rule's code (:mod:`frontend.flows.scripted`), delayed, dropped, its
connection closed, or its answer sent with a broken MAC or twice; the hit is noted in the trace.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from time import monotonic
from typing import Any, Final

import anyio
import anyio.abc

from acqkit import txnlog
from acqkit.frameprotocol import callbacks_apply, serve_frames
from acqkit.groupcommit import CommitFailed, GroupCommit
from acqkit.metrics import IN_FLIGHT, QUEUE_DEPTH, transactions_counter
from acqkit.netio import FramedConnection, serve_tcp
from acqkit.rules import ActionKind, RuleBook, corrupt_mac, hit_note
from acqkit.serving import PLAIN, Serving
from acqkit.traceflush import flush_traces
from acqkit.workers import FrameWorkers
from core_ledger.api import LedgerRequest
from core_ledger.client import LedgerClient
from frontend.callbackshell import NacLinkSession
from frontend.core import Context, Reply, answer_header, inbound, malfunction_reply, process, reversal_of
from frontend.effects import INLINE_JOURNAL_EFFECTS, AskLedger, AskScheme, NextRrn, QueueReversal
from frontend.flows.answer import Flow
from frontend.flows.faults import FaultPlan, plan_for_fault
from frontend.flows.scripted import scripted
from frontend.forwarder import ReversalForwarder
from frontend.interpreter import Interpreter
from frontend.journal import Journal
from frontend.journal_ops import JournalCall
from frontend.received import Begun, ClosedByRule
from frontend.recovery import settle_unsettled
from hsm_sim.client import HsmClient
from merchant.client import MerchantClient
from scheme.client import SwitchLinkClient
from wallet.client import WalletClient
from wire.errors import WireError
from wire.posframe import PosFrame
from wire.posmessage import PosMessage
from wire.trace import TraceWriter

log = logging.getLogger("acqsim.frontend")
SERVICE: Final = "frontend"

MAX_IN_FLIGHT_PER_CONNECTION: Final = 256
IDLE_TIMEOUT_S: Final = 600.0
#: How stale the idle deadline may get before a frame moves it on (an idle link may close this much sooner).
IDLE_CHECK_S: Final = 1.0
#: This service's series of the shared metrics, looked up once (``labels`` takes a lock and builds a key).
_IN_FLIGHT: Final = IN_FLIGHT.labels(service=SERVICE)
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
        rules: RuleBook | None = None,
        wallet: WalletClient | None = None,
        scheme: SwitchLinkClient | None = None,
        merchant: MerchantClient | None = None,
    ) -> None:
        """``wallet``: the wallet host for QR payments (without one, QR requests are answered 98). ``scheme``: the
        link to the scheme switch for off-us cards (with ``ctx.scheme``, the BIN table). ``merchant``: the
        merchant platform, told of each closed batch (store-and-forward; without one, no notice is queued)."""
        self.ctx, self.journal, self.ledger, self.rules = ctx, journal, ledger, rules
        self.trace = trace if trace is not None and trace.enabled else None
        self.forwarder = ReversalForwarder(
            journal, ledger, scheme=scheme, route=ctx.scheme, wallet=wallet, merchant=merchant
        )
        self.effects = Interpreter(
            journal,
            hsm,
            ledger,
            trace=self.trace,
            reversal_queued=self.forwarder.wake,
            wallet=wallet,
            scheme=scheme,
            notices=merchant is not None,
        )
        self.answered = 0

    @property
    def journal_writes(self) -> GroupCommit[JournalCall, Any]:
        return self.effects.journal_writes

    async def answer(self, payload: bytes) -> bytes | None:
        """The answer to one frame (``None``: nothing to answer)."""
        answers = await self.respond(payload)
        return answers[0] if answers else None

    async def respond(self, payload: bytes) -> list[bytes]:
        """What to send back for one frame: usually one answer; none, or two, when a rule says so.
        Raises :class:`ClosedByRule` when a rule closes the connection."""
        _IN_FLIGHT.inc()
        try:
            return await self._respond(payload)
        finally:
            _IN_FLIGHT.dec()

    async def _respond(self, payload: bytes) -> list[bytes]:
        begun = self.begin(payload)
        return begun if isinstance(begun, list) else await self.respond_begun(begun)

    def begin(self, payload: bytes) -> Begun | list[bytes]:
        """A frame read: parsed, decoded, matched against the rules and traced; ``[]`` when it cannot be parsed
        (dropped with a warning)."""
        try:
            frame = PosFrame.parse(payload)
        except WireError as exc:
            log.warning("dropping a frame: %s", exc)
            return []
        request = inbound(frame)
        correlation = request.correlation_id if isinstance(request, PosMessage) else None
        hit = self.rules.match(request.fields) if self.rules is not None and isinstance(request, PosMessage) else None
        if self.trace is not None:
            self.trace.record(
                direction="in", link="pos", peer="nac", payload=payload, correlation_id=correlation, note=hit_note(hit)
            )
        if hit is not None:
            log.info("rule %d (%s): %s", hit.number, hit.rule, hit.action.kind)
        return Begun(frame, request, correlation, hit)

    async def respond_begun(self, begun: Begun) -> list[bytes]:
        """What to send back for a frame :meth:`begin` read, its rule's action taken."""
        request, hit = begun.request, begun.hit
        action = hit.action.kind if hit is not None else None
        if hit is not None:
            if action is ActionKind.DROP:
                return []
            if action is ActionKind.CLOSE:
                raise ClosedByRule(hit.rule)
            if action is ActionKind.DELAY:
                await anyio.sleep(hit.action.delay_s)
        if isinstance(request, Reply):
            reply = request
        elif hit is not None and action is ActionKind.ANSWER:
            flow = scripted(request, self.ctx, hit.action.code or "", hit.rule)
            reply = await self.run(request, begun.correlation, flow)
        else:
            reply = await self.run(request, begun.correlation)
        return self.finish(begun, reply)

    def finish(self, begun: Begun, reply: Reply) -> list[bytes]:
        """The frames that answer ``begun`` with ``reply`` (none, one, or two when a rule says so), counted,
        traced and logged."""
        log.info("%s", reply.note)
        if reply.body is None:
            return []
        request, correlation, hit = begun.request, begun.correlation, begun.hit
        action = hit.action.kind if hit is not None else None
        self.answered += 1
        if isinstance(request, PosMessage):
            transactions_counter(SERVICE, request.mti, reply.response_code or "none").inc()
        answer = begun.frame.answer(reply.body, header=answer_header(begun.frame, reply)).to_bytes()
        if action is ActionKind.CORRUPT_MAC:
            answer = corrupt_mac(answer)
        if self.trace is not None:
            self.trace.record(
                direction="out", link="pos", peer="nac", payload=answer, correlation_id=correlation, note=reply.note
            )
        if correlation is not None and isinstance(request, PosMessage) and txnlog.enabled():
            shown = {**txnlog.iso_summary(request.fields), "code": reply.response_code, "note": reply.note}
            txnlog.log_transaction(SERVICE, correlation, **shown)
        return [answer, answer] if action is ActionKind.ANSWER_TWICE else [answer]

    async def run(self, request: PosMessage, correlation: str | None, flow: Flow | None = None) -> Reply:
        """The core's flow for ``request`` (or the given one), each effect carried out; a fault of our own costs
        this request only."""
        flow = process(request, self.ctx) if flow is None else flow
        asked: LedgerRequest | None = None  # the request the ledger was asked, if it was
        try:
            effect = next(flow)
            while True:
                if isinstance(effect, INLINE_JOURNAL_EFFECTS):  # answered from memory: nothing to await
                    effect = flow.send(self.effects.answer_inline(effect))
                    continue
                if isinstance(effect, AskLedger | AskScheme):
                    asked = effect.request
                effect = flow.send(await self.effects.carry_out(effect, correlation))
        except StopIteration as stop:
            reply: Reply = stop.value
            return reply
        except Exception as exc:
            return await self.fault_reply(request, asked, exc)

    async def fault_reply(self, request: PosMessage, asked: LedgerRequest | None, error: Exception) -> Reply:
        """The reply when ``request``'s flow failed inside the front-end with ``error`` (after the ledger was
        ``asked``, if it was): no answer, or 96 with a reversal of what the ledger may have posted queued."""
        if isinstance(error, JOURNAL_FAILURES):
            why, plan = "journal failed", plan_for_fault(asked, journal_failed=True)
            log.error("journal failed (%s): %s", plan.value, error)
        else:
            why, plan = "front-end fault", plan_for_fault(asked, journal_failed=False)
            log.error("transaction failed inside the front-end (%s)", plan.value, exc_info=error)
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
        """Frames are answered concurrently by the link's workers; the link is closed after ``IDLE_TIMEOUT_S``
        without a frame. The idle deadline is one cancel scope for the link, moved on at most every
        ``IDLE_CHECK_S`` (not a scope per frame)."""
        workers = FrameWorkers(MAX_IN_FLIGHT_PER_CONNECTION)

        async def answer_frames(payload: bytes | None) -> None:
            """One worker: answers its frame, then the next the reader hands it, until the link is done."""
            while payload is not None:
                try:
                    for answer in await self.respond(payload):
                        await conn.send(answer)
                except ClosedByRule as closed:
                    log.warning("closing the connection from %s: rule %s", conn.peer, closed)
                    await conn.aclose()
                payload = await workers.next_frame()

        idle = anyio.CancelScope()
        async with anyio.create_task_group() as tg:
            try:
                with idle:
                    # Elapsed time by the process's monotonic clock (anyio's clock costs a backend lookup a
                    # frame); the deadline itself is set on anyio's clock, once a second at most.
                    moved_at = monotonic()
                    idle.deadline = anyio.current_time() + IDLE_TIMEOUT_S
                    while (payload := await conn.receive()) is not None:
                        if (now := monotonic()) - moved_at >= IDLE_CHECK_S:
                            moved_at, idle.deadline = now, anyio.current_time() + IDLE_TIMEOUT_S
                        if not workers.hand_over(payload):
                            if workers.may_start():
                                tg.start_soon(answer_frames, payload)
                            else:
                                await workers.room()
                                workers.hand_over(payload)  # a worker waits now: it cannot refuse
            finally:
                workers.close()  # after the frames in flight were answered, each worker ends
        if idle.cancelled_caught:
            raise TimeoutError(f"no frame for {IDLE_TIMEOUT_S:.0f} s")


async def serve(
    host: str,
    port: int,
    *,
    frontend: Frontend,
    serving: Serving = PLAIN,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    QUEUE_DEPTH.labels(service=SERVICE, queue="journal_writes").set_function(lambda: frontend.journal_writes.queued)
    async with anyio.create_task_group() as tg:
        await tg.start(frontend.journal_writes.run_flusher)
        if frontend.trace is not None and frontend.trace.enabled:
            await tg.start(flush_traces, frontend.trace)
        # what a crash left pending, before any new traffic
        await settle_unsettled(frontend.journal, frontend.journal_writes, frontend.ledger, route=frontend.ctx.scheme)
        tg.start_soon(frontend.forwarder.run)
        listening: Callable[..., Awaitable[None]]
        if callbacks_apply(serving.server_tls):  # asyncio, plain TCP: flows stepped from callbacks
            listening = functools.partial(
                serve_frames,
                host,
                port,
                lambda conn: NacLinkSession(frontend, conn, tg, MAX_IN_FLIGHT_PER_CONNECTION),
                name="frontend",
                max_connections=serving.max_connections,
                idle_timeout=IDLE_TIMEOUT_S,
            )
        else:
            listening = functools.partial(
                serve_tcp,
                host,
                port,
                frontend.handle,
                name="frontend",
                max_connections=serving.max_connections,
                tls=serving.server_tls,
            )
        task_status.started(await tg.start(listening))
