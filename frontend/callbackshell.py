"""The front-end's NAC link on the callback path (asyncio, plain TCP): each connection is a
:class:`acqkit.frameprotocol.FrameSession`, and each frame's flow (:func:`frontend.core.process`) is stepped from
the event loop's callbacks — no task per connection or frame, no coroutine per effect. The rules of a frame are
:class:`frontend.server.Frontend`'s (:class:`FrameAnswerer` here), as on the task path (``Frontend.handle``):

- A frame is read (:meth:`Frontend.begin`: parsed, decoded, traced, its rule matched) and its flow stepped: journal
  reads answered from memory at once; HSM commands, the ledger and journal writes — a purchase's path — started
  through their callback forms (:meth:`frontend.interpreter.Interpreter.start`), the flow resumed when each ends.
  Anything else runs in a task of the server's task group: an effect without a callback form (the scheme switch,
  the wallet, a settlement notice) or whose peer link is not up on the callback path, carried out as the task
  path does (:meth:`Interpreter.carry_out`) and the flow stepped on with its result; a frame with a rule
  (:meth:`Frontend.respond_begun`: a delay, a close …); a fault of our own (:meth:`Frontend.fault_reply`, which
  may queue a reversal).
- Answers go back as each is ready, as on the task path; at most ``max_in_flight`` frames of a connection are in
  flight, beyond that the connection reads nothing more (``pause_reading``) until answers free slots.
- Idle and send timeouts, framing errors and the graceful close are the runtime's (``serve_frames``). A frame whose
  connection goes before it is answered goes on to its end (its journal rows and postings are made all the same);
  its answer is dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import anyio.abc

from acqkit.frameprotocol import FrameConnection
from core_ledger.api import LedgerRequest
from frontend.core import Context, Reply, process
from frontend.effects import INLINE_JOURNAL_EFFECTS, AskLedger, AskScheme, Effect
from frontend.flows.answer import Flow
from frontend.interpreter import Interpreter
from frontend.received import Begun, ClosedByRule
from wire.posmessage import PosMessage

log = logging.getLogger("acqsim.frontend")


class FrameAnswerer(Protocol):
    """What the session needs of the front-end (:class:`frontend.server.Frontend`, which chooses this shell)."""

    ctx: Context
    effects: Interpreter

    def begin(self, payload: bytes) -> Begun | list[bytes]: ...

    def finish(self, begun: Begun, reply: Reply) -> list[bytes]: ...

    async def respond_begun(self, begun: Begun) -> list[bytes]: ...

    async def fault_reply(self, request: PosMessage, asked: LedgerRequest | None, error: Exception) -> Reply: ...


class NacLinkSession:
    """One NAC connection's frames on the callback path (see the module)."""

    __slots__ = ("_held", "_in_flight", "conn", "frontend", "max_in_flight", "tasks")

    def __init__(
        self, frontend: FrameAnswerer, conn: FrameConnection, tasks: anyio.abc.TaskGroup, max_in_flight: int
    ) -> None:
        self.frontend, self.conn, self.tasks, self.max_in_flight = frontend, conn, tasks, max_in_flight
        self._in_flight = 0
        self._held: list[bytes] | None = None  # frames read while every slot was taken (reading paused meanwhile)

    # -- FrameSession ----------------------------------------------------------------------------------------

    def frames_received(self, frames: list[bytes]) -> None:
        if self._held is not None:
            self._held.extend(frames)
            return
        self._read(frames)

    def connection_closed(self, error: BaseException | None) -> None:
        self._held = None  # frames in flight go on to their end; their answers are dropped

    # -- inside ------------------------------------------------------------------------------------------------

    def _read(self, frames: list[bytes]) -> None:
        frontend = self.frontend
        for index, payload in enumerate(frames):
            if self._in_flight >= self.max_in_flight:
                self._held = frames[index:]
                self.conn.pause_reading()
                return
            begun = frontend.begin(payload)
            if isinstance(begun, list):
                continue  # a frame that does not parse: dropped, logged
            self._in_flight += 1
            request = begun.request
            if begun.hit is not None:  # a rule's action (a delay, a close …): the task path's way
                self.tasks.start_soon(self._respond_in_task, begun)
            elif isinstance(request, Reply):  # a body that does not decode: nothing to carry out
                self.answer(frontend.finish(begun, request))
            else:
                FlowStepper(self, begun, request).start()

    async def _respond_in_task(self, begun: Begun) -> None:
        try:
            answers = await self.frontend.respond_begun(begun)
        except ClosedByRule as closed:
            log.warning("closing the connection from %s: rule %s", self.conn.peer, closed)
            self.conn.close()
            answers = []
        self.answer(answers)

    def answer(self, answers: list[bytes]) -> None:
        """A frame in flight ends: its answers (if any) leave with this loop turn's write; a held frame may go."""
        self._in_flight -= 1
        if answers and not self.conn.closing:
            self.conn.send_many(answers)
        held = self._held
        if held is not None and self._in_flight < self.max_in_flight:
            self._held = None
            self.conn.resume_reading()
            self._read(held)


class FlowStepper:
    """One frame's flow, stepped from callbacks (a :class:`frontend.interpreter.Continuation`)."""

    __slots__ = ("asked", "begun", "flow", "request", "session", "waiting")

    def __init__(self, session: NacLinkSession, begun: Begun, request: PosMessage) -> None:
        self.session, self.begun, self.request = session, begun, request
        self.flow: Flow = process(request, session.frontend.ctx)
        self.asked: LedgerRequest | None = None  # the request the ledger was asked, if it was
        self.waiting = False  # an effect was started and has not ended

    def start(self) -> None:
        self._step(None, first=True)

    def _step(self, result: Any, *, first: bool = False) -> None:
        frontend = self.session.frontend
        flow = self.flow
        try:
            effect: Effect = next(flow) if first else flow.send(result)
            while isinstance(effect, INLINE_JOURNAL_EFFECTS):  # answered from memory: nothing to wait for
                effect = flow.send(frontend.effects.answer_inline(effect))
            if isinstance(effect, AskLedger | AskScheme):
                self.asked = effect.request
            self.waiting = True
            frontend.effects.start(effect, self.begun.correlation, self)
        except StopIteration as stop:
            self._reply(stop.value)
        except Exception as exc:
            self.waiting = False
            self._fault(exc)

    def _reply(self, reply: Reply) -> None:
        self.session.answer(self.session.frontend.finish(self.begun, reply))

    # -- Continuation ------------------------------------------------------------------------------------------

    def resume(self, result: Any) -> None:
        if self._ended():
            self._step(result)

    def fail(self, error: Exception) -> None:
        if self._ended():
            self._fault(error)

    def in_task(self, work: Callable[[], Awaitable[Any]], done: Callable[[Any], None]) -> None:
        self._spawn(work, done, self.fail)

    # -- inside ------------------------------------------------------------------------------------------------

    def _fault(self, error: Exception) -> None:
        """The flow ends in the fault plan (:meth:`Frontend.fault_reply`), in a task: it may queue a reversal."""
        frontend = self.session.frontend
        self._spawn(lambda: frontend.fault_reply(self.request, self.asked, error), self._reply, self._gave_up)

    def _ended(self) -> bool:
        """The effect waited for has ended (``False``, logged: it had already — a second outcome is a bug)."""
        if not self.waiting:
            log.error("an effect of %s ended twice; the second outcome is ignored", self.begun.correlation)
            return False
        self.waiting = False
        return True

    def _spawn(
        self, work: Callable[[], Awaitable[Any]], done: Callable[[Any], None], failed: Callable[[Exception], None]
    ) -> None:
        try:
            self.session.tasks.start_soon(self._in_task, work, done, failed)
        except RuntimeError:  # the server is stopping (its task group is done): the frame ends unanswered
            log.info("transaction %s ends unanswered: the front-end is stopping", self.begun.correlation)
            self.session.answer([])

    async def _in_task(
        self,
        work: Callable[[], Awaitable[Any]],
        done: Callable[[Any], None],
        failed: Callable[[Exception], None],
    ) -> None:
        try:
            result = await work()
        except Exception as exc:
            failed(exc)
            return
        done(result)

    def _gave_up(self, error: Exception) -> None:
        log.error("transaction %s: the fault plan itself failed", self.begun.correlation, exc_info=error)
        self.session.answer([])
