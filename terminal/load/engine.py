"""The pipelined load engine: many terminals' sessions over a few kept-open connections (or a short connection
per exchange), no task per terminal.

``acqsim load`` runs here: with ``--keep-alive`` (and ``--connections C``) over kept-open connections, without
it a short connection per exchange that connects, sends, reads the answer and closes
(``EngineOptions.keep_alive``): on asyncio stepped from the loop's callbacks (``shortcalls.py``), on trio a task
each. Each
load terminal is a sans-IO :class:`~terminal.session.TerminalSession` — the same rules as ``acqsim pos``: STAN,
sign-on with KCV check, PIN block under the PIK, MAC under the MAK, the reversal stored before the request
leaves and sent before the terminal's next request, the answer's MAC verified — and does one exchange at a
time, as a real POS. What is different from one task per terminal is the I/O:

- terminal *t* uses connection ``t % C``; a connection carries its terminals' requests interleaved, and
  answers find their terminal by field 41 and are checked against the request (STAN and MTI + 10); an answer
  shaped like one decoded before is read at fixed offsets (``answers.py``), any other decoded in full;
- one scheduler task hands request *i* to terminal ``i % T`` at its due time (open loop: latency counts from
  the due time, queueing at a busy terminal included) and writes every frame that came due in the same turn
  in one write per connection;
- one reader task per connection answers a whole read's worth of frames, then writes the terminals' next
  requests (the next one already due, or a pending reversal) in one write;
- one watchdog task ends exchanges unanswered after ``answer_timeout`` (``no answer``; the reversal stays
  pending and goes first, as on a real POS).

Nothing grows with the duration: terminals keep no batch (``keep_batch=False``), the mix is drawn as it
goes, and statistics are an HDR histogram plus a bounded sample for the plot.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

import anyio
import anyio.abc

from acqkit.config import CardFixture, Endpoint
from acqkit.frameprotocol import callbacks_apply
from acqkit.netio import FramedConnection, connect
from terminal.load.answers import AnswerLayouts
from terminal.load.schedule import Mix, OpenLoopSchedule
from terminal.load.shortcalls import ShortCalls
from terminal.load.stats import NO_ANSWER, LoadStats
from terminal.session import TerminalError, TerminalSession, parse_answer
from wire.errors import FramingError, WireError
from wire.posframe import BODY_OFFSET, PosFrame

#: How often the watchdog looks for unanswered exchanges.
WATCHDOG_EVERY_S: Final = 0.1
#: Kinds drawn for a run; request *i* has kind ``i % KIND_TABLE`` of them.
KIND_TABLE: Final = 4096
#: Sign-ons in flight at once when a run starts.
SIGN_ON_WINDOW: Final = 256
#: Sign-on attempts before a terminal gives up; its requests are then counted under ``NOT_SIGNED_ON``.
MAX_SIGN_ON_TRIES: Final = 2
#: Outcome codes of the engine itself (beside field 39 values and ``no answer``).
NOT_SIGNED_ON: Final = "not signed on"
UNTRUSTED: Final = "answer MAC failed"
#: How a request picks its card: the next card each request ("request"), or one card per terminal.
SPREADS: Final = ("request", "terminal")
_CONNECTION_ERRORS: Final = (OSError, TimeoutError, FramingError, anyio.BrokenResourceError, anyio.ClosedResourceError)


@dataclasses.dataclass(slots=True)
class _Exchange:
    kind: str
    stan: str
    due: float | None  # a scheduled request's due time; None for sign-ons and reversals
    deadline: float
    answer_mti: str = ""  # the request's MTI + 10 (0200 → 0210): an answer of another MTI is not its answer


@dataclasses.dataclass(slots=True, eq=False)
class _Link:
    conn: FramedConnection
    outbox: list[bytes] = dataclasses.field(default_factory=list)
    alive: bool = True


@dataclasses.dataclass(slots=True, eq=False)
class _Terminal:
    session: TerminalSession
    link: _Link | None  # None: a short connection per exchange
    #: The index of this terminal's next request (request *i* is terminal ``i % T``'s): what is queued at a
    #: terminal is every index from here up to what is due, so an overloaded run holds nothing per request.
    next_index: int = 0
    exchange: _Exchange | None = None
    sign_on_tries: int = 0

    @property
    def dead(self) -> bool:
        return self.sign_on_tries >= MAX_SIGN_ON_TRIES and not self.session.state.signed_on


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class EngineOptions:
    schedule: OpenLoopSchedule
    mix: Mix
    cards: Sequence[CardFixture]
    spread: str = "request"
    connections: int = 1
    #: ``False``: every exchange on a short connection of its own, as dial-up and GPRS POS terminals do
    #: (``connections`` is then not used).
    keep_alive: bool = True
    answer_timeout: float = 5.0
    #: Without keep-alive: step each short call from the loop's callbacks where the runtime allows it (asyncio);
    #: ``False`` gives a task per call everywhere (trio's way; the benchmark measures both).
    short_calls_by_callbacks: bool = True
    seed: int = 0
    amount: int = 100  # fen, of every request but balance inquiries


class LoadEngine:
    """One run. ``sessions`` are fresh (not signed on); they sign on over the engine's connections first."""

    def __init__(self, sessions: Sequence[TerminalSession], options: EngineOptions) -> None:
        if not sessions or options.connections < 1 or not options.cards or options.spread not in SPREADS:
            raise ValueError("a load needs terminals, cards, a known spread and at least one connection")
        self.options = options
        self.stats = LoadStats()
        self._sessions = sessions
        self._terminals: list[_Terminal] = []
        self._by_id: dict[str, _Terminal] = {}
        self._in_flight = 0
        self._idle = anyio.Event()
        self._accepting = False  # True while the schedule runs: terminals take their due requests
        self._dirty: set[_Link] = set()  # connections with frames waiting in their outbox
        #: Without keep-alive: frames waiting for a short connection each, and where and in what task group
        #: those connections are made.
        self._short: list[tuple[_Terminal, _Exchange | None, bytes]] = []
        self._against: Endpoint | None = None
        #: On asyncio, the short connections stepped from the loop's callbacks (``None``: a task per call).
        self._short_calls: ShortCalls[tuple[_Terminal, _Exchange | None]] | None = None
        self._task_group: anyio.abc.TaskGroup | None = None
        self._sign_on_queue: deque[_Terminal] = deque()
        self._start = 0.0
        #: Next request indices of idle terminals (request *i* is terminal ``i % T``'s), earliest first: the
        #: scheduler wakes for these only, so an overloaded run (no terminal idle) costs it nothing.
        self._idle_next: list[int] = []
        self._wake = anyio.Event()  # set when a terminal goes idle with a request due before ``_wake_at``
        self._wake_at = math.inf
        #: Each request's kind, by index modulo its length: drawn once with the mix's weights (a run of any
        #: length holds no per-request plan).
        self._kinds = options.mix.plan(KIND_TABLE, options.seed)
        #: Shapes of answers decoded in full: later answers of the same shape are read at fixed offsets.
        self._layouts = AnswerLayouts()
        #: Answers that named no terminal waiting for them, or did not match its request; bad frames.
        self.stray_answers = 0
        self.bad_answers = 0

    # --- the sans-IO part: what a terminal sends next, what an answer does ---------------------------

    def _next_frame(self, terminal: _Terminal, now: float) -> bytes | None:
        session = terminal.session
        deadline = now + self.options.answer_timeout
        frame: bytes | None
        if not session.state.signed_on:
            if terminal.dead:
                self._drop_backlog(terminal, now)
                return None
            terminal.sign_on_tries += 1
            frame = session.sign_on()
            terminal.exchange = _Exchange("sign_on", _stan(session), None, deadline)
        elif session.state.pending_reversal is not None:
            frame = session.reversal_due()  # not None: a reversal is pending
            terminal.exchange = _Exchange("reversal", _stan_of_reversal(session), None, deadline)
        elif self._accepting and self._is_due(terminal.next_index, now):
            due, kind, card = self._request(terminal.next_index)
            terminal.next_index += len(self._terminals)
            amount = 0 if kind == "balance" else self.options.amount
            frame = session.financial(kind, card, amount=amount, pin=card.pin)
            terminal.exchange = _Exchange(kind, _stan(session), due, deadline)
            self.stats.sent += 1
        else:
            return None
        if frame is not None:
            self._in_flight += 1
            terminal.exchange.answer_mti = _answer_mti(frame)
        return frame

    def _is_due(self, index: int, now: float) -> bool:
        schedule = self.options.schedule
        return index < schedule.count and self._start + schedule.due(index) <= now

    def _request(self, index: int) -> tuple[float, str, CardFixture]:
        """Request ``index``: its due time, kind and card — all functions of the index."""
        cards = self.options.cards
        spread_key = index if self.options.spread == "request" else index % len(self._terminals)
        due = self._start + self.options.schedule.due(index)
        return due, self._kinds[index % len(self._kinds)], cards[spread_key % len(cards)]

    def _drop_backlog(self, terminal: _Terminal, now: float) -> None:
        while self._is_due(terminal.next_index, now):
            due, _, _ = self._request(terminal.next_index)
            terminal.next_index += len(self._terminals)
            self.stats.sent += 1
            self.stats.record(due - self._start, now - due, NOT_SIGNED_ON)

    def _finish(self, terminal: _Terminal, now: float, code: str) -> None:
        exchange = terminal.exchange
        assert exchange is not None
        terminal.exchange = None
        self._in_flight -= 1
        if exchange.due is not None:
            self.stats.record(exchange.due - self._start, now - exchange.due, code)
        frame = self._next_frame(terminal, now)
        if frame is not None:
            self._post(terminal, frame)
        elif self._accepting:  # idle until its next request is due: the scheduler will hand it over
            heapq.heappush(self._idle_next, terminal.next_index)
            if self._start + self.options.schedule.due(terminal.next_index) < self._wake_at:
                self._wake.set()  # due before the scheduler means to wake: wake it now
        if exchange.kind == "sign_on" and self._sign_on_queue:  # the next terminal in line signs on
            waiting = self._sign_on_queue.popleft()
            self._post(waiting, self._next_frame(waiting, now))
        if self._in_flight == 0:
            self._idle.set()

    def _post(self, terminal: _Terminal, frame: bytes | None) -> None:
        """Leave ``frame`` for the next write on the terminal's connection."""
        if frame is not None:
            link = terminal.link
            if link is None:
                self._short.append((terminal, terminal.exchange, frame))
            else:
                link.outbox.append(frame)
                self._dirty.add(link)

    def _decode(self, payload: bytes) -> tuple[PosFrame, dict[str, str]]:
        """The answer's frame and fields: read at fixed offsets (MTI, 11, 39, 41 only) when its body has a shape
        already decoded and it answers an exchange that needs no more (not a sign-on: that reads the keys in
        62; a terminal keeping its batch remembers every field), else decoded in full and its shape learnt.
        Raises :class:`TerminalError` when it does not decode."""
        try:
            frame = PosFrame.parse(payload)
        except WireError as exc:
            raise TerminalError(f"answer does not decode: {exc}") from None
        fields = self._layouts.read(frame.body)
        if fields is not None:
            terminal = self._by_id.get(fields["41"])
            exchange = terminal.exchange if terminal is not None else None
            if terminal is None or exchange is None or (exchange.kind != "sign_on" and not terminal.session.keep_batch):
                return frame, fields
        frame, fields = parse_answer(payload)
        self._layouts.learn(frame.body, fields)
        return frame, fields

    def _answer(self, payload: bytes, now: float) -> None:
        try:
            frame, fields = self._decode(payload)
        except TerminalError:
            self.bad_answers += 1
            return
        terminal = self._by_id.get(fields.get("41", ""))
        exchange = terminal.exchange if terminal is not None else None
        if (
            terminal is None
            or exchange is None
            or fields.get("11") != exchange.stan
            or fields.get("t") != exchange.answer_mti
        ):
            self.stray_answers += 1  # late (already counted as no answer), or not ours
            return
        try:
            outcome = terminal.session.receive_decoded(exchange.kind, frame, fields)
        except TerminalError:  # a sign-on whose keys do not check
            self._finish(terminal, now, NO_ANSWER)
            return
        self._finish(terminal, now, outcome.response_code if outcome.trusted else UNTRUSTED)

    def _expire(self, now: float) -> None:
        for terminal in self._terminals:
            exchange = terminal.exchange
            if exchange is not None and exchange.deadline <= now:
                self._no_answer(terminal, now)

    def _no_answer(self, terminal: _Terminal, now: float) -> None:
        """End the terminal's exchange unanswered (a reversal counts a failed try)."""
        exchange = terminal.exchange
        if exchange is not None and exchange.kind == "reversal":
            terminal.session.reversal_failed()
        self._finish(terminal, now, NO_ANSWER)

    # --- the I/O shell --------------------------------------------------------------------------------

    async def run(
        self,
        against: Endpoint,
        progress: Callable[[LoadStats, float], None] | None = None,
        *,
        signed_on: Callable[[], Awaitable[None]] | None = None,
    ) -> float:
        """Sign on, run the schedule, wait for the answers still due; the elapsed seconds of the schedule.
        ``signed_on`` is awaited once every terminal has signed on, connections open and idle (a benchmark
        measures the memory of idle terminals there). Raises :class:`TerminalError` (in the run's exception
        group) when the first connections cannot be made: nobody answers at ``against``."""
        options = self.options
        links: list[_Link] = []
        self._against = against
        try:
            async with anyio.create_task_group() as tg:
                self._task_group = tg
                await self._connect(links)
                if not options.keep_alive and options.short_calls_by_callbacks and callbacks_apply():
                    self._short_calls = ShortCalls(
                        against.host,
                        against.port,
                        answered=self._short_answered,
                        failed=self._short_failed,
                        timeout=options.answer_timeout,
                    )
                self._terminals = [
                    _Terminal(session, links[i % len(links)] if links else None, next_index=i)
                    for i, session in enumerate(self._sessions)
                ]
                self._by_id = {t.session.state.terminal_id: t for t in self._terminals}
                self._start = anyio.current_time()
                for link in links:
                    tg.start_soon(self._read, link)
                tg.start_soon(self._watchdog)
                sign_on_rounds = MAX_SIGN_ON_TRIES * (1 + len(self._terminals) // SIGN_ON_WINDOW)
                with anyio.fail_after(options.answer_timeout * sign_on_rounds):
                    await self._sign_on_all()
                if signed_on is not None:
                    await signed_on()
                elapsed = await self._schedule(progress)
                tg.cancel_scope.cancel()
            return elapsed
        finally:
            if self._short_calls is not None:
                self._short_calls.close_all()
            for link in links:
                await link.conn.aclose()

    async def _connect(self, links: list[_Link]) -> None:
        """Open the kept-open connections into ``links`` or, without keep-alive, open and close one to learn
        that something answers there before a run of short connections."""
        options, against = self.options, self._against
        assert against is not None
        try:
            if not options.keep_alive:
                await (await connect(against.host, against.port, timeout=options.answer_timeout)).aclose()
            for _ in range(min(options.connections, len(self._sessions)) if options.keep_alive else 0):
                links.append(_Link(await connect(against.host, against.port, timeout=options.answer_timeout)))
        except _CONNECTION_ERRORS as exc:
            raise TerminalError(f"cannot connect: {exc}") from None

    async def _sign_on_all(self) -> None:
        """Sign every terminal on, ``SIGN_ON_WINDOW`` at a time (as terminals would over a morning, not all
        in one instant: a host answers 10,000 sign-ons in the same second only with timeouts)."""
        now = anyio.current_time()
        self._sign_on_queue.extend(self._terminals[SIGN_ON_WINDOW:])
        for terminal in self._terminals[:SIGN_ON_WINDOW]:
            self._post(terminal, self._next_frame(terminal, now))
        await self._flush()
        if self._in_flight:
            self._idle = anyio.Event()
            await self._idle.wait()

    async def _schedule(self, progress: Callable[[LoadStats, float], None] | None) -> float:
        options = self.options
        schedule, terminals = options.schedule, self._terminals
        self._start = start = anyio.current_time() + 0.05
        next_progress = start + 1.0
        end = start + schedule.duration
        terminal_count = len(terminals)
        self._idle_next = [t.next_index for t in terminals if t.exchange is None]
        heapq.heapify(self._idle_next)
        self._accepting = True
        while True:
            now = anyio.current_time()
            idle = self._idle_next
            while idle and self._is_due(idle[0], now):  # idle terminals whose next request is due start it
                index = heapq.heappop(idle)
                terminal = terminals[index % terminal_count]
                if terminal.exchange is None and terminal.next_index == index:  # else a stale entry
                    frame = self._next_frame(terminal, now)
                    if frame is not None:
                        self._post(terminal, frame)
                    else:  # a terminal that cannot sign on: its due requests were counted, wait for its next
                        heapq.heappush(idle, terminal.next_index)
            await self._flush()
            if progress is not None and now >= next_progress:
                progress(self.stats, now - start)
                next_progress = now + 1.0
            if now >= end:  # every request is due by now: what is still queued at a terminal stays unsent
                break
            wake_at = min(end, next_progress) if progress is not None else end
            if idle and idle[0] < schedule.count:
                wake_at = min(wake_at, start + schedule.due(idle[0]))
            self._wake, self._wake_at = anyio.Event(), wake_at
            with anyio.move_on_after(max(0.0, wake_at - anyio.current_time())):
                await self._wake.wait()  # or a terminal went idle (its next request may be due sooner)
        self._accepting = False  # what is still queued at a terminal now stays unsent
        if self._in_flight:
            self._idle = anyio.Event()
            with anyio.move_on_after(options.answer_timeout + 1.0):
                await self._idle.wait()
        elapsed = anyio.current_time() - start
        self.stats.not_sent += sum(max(0, -(-(schedule.count - t.next_index) // terminal_count)) for t in terminals)
        return elapsed

    async def _flush(self) -> None:
        """Write what each connection has waiting, one write per connection; start a short connection for
        each frame that goes on one."""
        if self._short and self._short_calls is not None:
            self._start_short_calls()
        elif self._short:
            short, self._short = self._short, []
            assert self._task_group is not None  # short frames are posted only while the run's tasks run
            for terminal, exchange, frame in short:
                self._task_group.start_soon(self._exchange_once, terminal, exchange, frame)
        dirty, self._dirty = self._dirty, set()
        for link in dirty:
            frames, link.outbox = link.outbox, []
            if frames:
                await self._send(link, frames)

    async def _send(self, link: _Link, frames: list[bytes]) -> None:
        if not link.alive:
            return  # its terminals' exchanges end as no answer at their deadline
        try:
            await link.conn.send_many(frames)
        except _CONNECTION_ERRORS:
            link.alive = False

    async def _read(self, link: _Link) -> None:
        conn = link.conn
        try:
            while (payload := await conn.receive()) is not None:
                now = anyio.current_time()
                self._answer(payload, now)
                for more in conn.buffered_frames():
                    self._answer(more, now)
                await self._flush()
        except _CONNECTION_ERRORS:
            pass
        link.alive = False

    async def _exchange_once(self, terminal: _Terminal, exchange: _Exchange | None, frame: bytes) -> None:
        """One exchange on a connection of its own: connect, send, read the answer, close. No answer (refused,
        broken, closed or timed out) ends the exchange at once, as a POS terminal gives up on its call."""
        against = self._against
        assert against is not None
        payload = None
        try:
            conn = await connect(against.host, against.port, timeout=self.options.answer_timeout)
            try:
                await conn.send(frame)
                payload = await conn.receive(self.options.answer_timeout)
            finally:
                await conn.aclose()
        except _CONNECTION_ERRORS:
            pass
        now = anyio.current_time()
        if payload is not None:
            self._answer(payload, now)
        elif exchange is not None and terminal.exchange is exchange:  # not ended by the watchdog meanwhile
            self._no_answer(terminal, now)
        await self._flush()

    def _start_short_calls(self) -> None:
        """Start a callback-stepped short call for each frame waiting for one (asyncio)."""
        calls = self._short_calls
        assert calls is not None
        short, self._short = self._short, []
        for terminal, exchange, frame in short:
            calls.start(frame, (terminal, exchange))

    def _short_answered(self, payload: bytes, call: tuple[_Terminal, _Exchange | None], now: float) -> None:
        self._answer(payload, now)
        self._start_short_calls()  # the terminal's next request, if due, goes at once

    def _short_failed(self, call: tuple[_Terminal, _Exchange | None], now: float) -> None:
        """No answer (refused, broken, closed, timed out) ends the exchange at once, as on a task of its own."""
        terminal, exchange = call
        if exchange is not None and terminal.exchange is exchange:  # not ended by the watchdog meanwhile
            self._no_answer(terminal, now)
        self._start_short_calls()

    async def _watchdog(self) -> None:
        while True:
            await anyio.sleep(WATCHDOG_EVERY_S)
            now = anyio.current_time()
            if self._short_calls is not None:
                self._short_calls.expire(now)
            self._expire(now)
            await self._flush()


def _answer_mti(request: bytes) -> str:
    """The MTI that answers ``request`` (a POS payload): its own with the function digit one up."""
    mti = request[BODY_OFFSET : BODY_OFFSET + 2].hex()
    return mti[:2] + str(int(mti[2]) + 1) + mti[3]


def _stan(session: TerminalSession) -> str:
    return f"{session.state.stan:06d}"


def _stan_of_reversal(session: TerminalSession) -> str:
    pending = session.state.pending_reversal
    return pending.fields.get("11", "") if pending is not None else ""
