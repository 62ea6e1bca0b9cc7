"""The NAC's callback path: terminals and front-end links stepped from asyncio protocol callbacks
(:mod:`acqkit.frameprotocol`), with no task per connection or frame. Used on asyncio without TLS
(:func:`acqkit.frameprotocol.callbacks_apply`); elsewhere the task path (:mod:`nac.taskpath`) carries them.

Every rule is :class:`nac.core.NacCore`'s, as on the task path; this module only maps the connection's
callbacks onto it:

- a terminal's frames of one read are routed in one call; requests forwarded to a front-end in that call (and
  answers sent to terminals) leave in one write per connection at its end;
- a rule's delay pauses that terminal's reading and holds its frames not yet routed, so its later frames wait
  behind the delayed one, as on the task path;
- a terminal that does not read: while its connection's unsent answers are over the runtime's high-water mark
  (:data:`acqkit.frameprotocol.WRITE_HIGH_WATER_BYTES`) its reading is paused, at most ``max_in_flight``
  further answers are queued (more are dropped, ``terminal_not_reading``), and after ``send_timeout_s``
  without progress it is aborted (``closed.send_failed``; the answers queued meanwhile counted as lost);
- idle terminals, framing errors and send timeouts are closed by the runtime, which names the cause; the core
  counts it and logs it as on the task path.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from acqkit.frameprotocol import ConnectionIdle, FrameConnection, SendTimedOut
from nac.core import Delay, NacCore
from nac.events import CloseReason
from nac.routes import Member
from wire.errors import FramingError

log = logging.getLogger("acqsim.nac")


class TerminalSession:
    """One terminal connection on the callback path: its frames to the core, its answers from it."""

    __slots__ = ("_backlog", "_held", "_reason", "conn", "core", "terminal_id", "time")

    def __init__(self, core: NacCore, conn: FrameConnection, terminal_id: int, time: Callable[[], float]) -> None:
        """``time``: the event loop's clock (the one the core's deadlines are on)."""
        self.core, self.conn, self.terminal_id, self.time = core, conn, terminal_id, time
        self._reason: CloseReason | None = None  # why the NAC closed it, if it did
        self._held: list[bytes] | None = None  # frames waiting behind a delayed one (reading paused meanwhile)
        self._backlog = 0  # answers queued while the terminal's unsent answers are over the high-water mark

    # -- FrameSession --------------------------------------------------------------------------------------

    def frames_received(self, frames: list[bytes]) -> None:
        if self._held is not None:  # a delayed frame is still held: these wait behind it
            self._held.extend(frames)
            return
        self._route_all(frames, 0)

    def connection_closed(self, error: BaseException | None) -> None:
        core = self.core
        reason = self._reason
        if isinstance(error, FramingError):
            reason = core.terminal_framing_error(self.conn.peer, error)
        elif isinstance(error, ConnectionIdle):
            reason = core.terminal_idle(self.conn.peer)
        elif isinstance(error, SendTimedOut):
            core.terminal_send_failed(max(self._backlog, 1))  # the unsent bytes held one answer at least
        self._held = None
        core.terminal_closed(self.terminal_id, reason)

    # -- TerminalSink --------------------------------------------------------------------------------------

    def put(self, payload: bytes) -> bool:
        """Send an answer; ``False`` (dropped) when ``max_in_flight`` are already queued beyond the high-water
        mark. An answer reaching a connection that is closing is lost with it (as on the task path)."""
        conn = self.conn
        if conn.writing_paused:
            if self._backlog >= self.core.limits.max_in_flight:
                return False
            self._backlog += 1
        else:
            self._backlog = 0
        conn.send(payload)
        self.core.answer_written(conn.peer, payload)
        return True

    def __len__(self) -> int:
        return self._backlog

    # -- inside --------------------------------------------------------------------------------------------

    def _route_all(self, frames: list[bytes], start: int) -> None:
        """Route ``frames[start:]`` in order; a delay holds the rest (reading paused) until it has passed."""
        core, conn, terminal_id = self.core, self.conn, self.terminal_id
        now = self.time()
        for index in range(start, len(frames)):
            step = core.terminal_frame(terminal_id, conn.peer, frames[index], now)
            if step is None:
                continue
            if isinstance(step, Delay):
                self._held = frames[index + 1 :]
                conn.pause_reading()
                conn.call_later(step.seconds, self._delay_passed, frames[index])
                return
            self._close(step)
            return

    def _delay_passed(self, payload: bytes) -> None:
        held, self._held = self._held or [], None
        step = self.core.route(self.terminal_id, self.conn.peer, payload, self.time())
        if step is not None:
            self._close(step)
            return
        self.conn.resume_reading()
        self._route_all(held, 0)

    def _close(self, reason: CloseReason) -> None:
        self._reason = reason
        self._held = None
        self.conn.close()


class TerminalOpener:
    """The terminal listener's session factory: a session, or ``None`` (refused) over ``max_connections``.
    Made inside the event loop (it keeps the loop's clock)."""

    __slots__ = ("core", "time")

    def __init__(self, core: NacCore) -> None:
        self.core = core
        self.time = asyncio.get_running_loop().time

    def __call__(self, conn: FrameConnection) -> TerminalSession | None:
        session = TerminalSession(self.core, conn, 0, self.time)
        terminal_id = self.core.terminal_opened(conn.peer, session)
        if terminal_id is None:
            return None
        session.terminal_id = terminal_id
        return session


class LinkSession:
    """One front-end connection on the callback path: answers in, to the core; the connection itself is the
    link's sink (requests forwarded in one loop turn leave in one write)."""

    __slots__ = ("_early", "core", "drained", "group", "link_id", "member")

    def __init__(self, core: NacCore, group: str, member: Member) -> None:
        self.core, self.group, self.member = core, group, member
        self.link_id: int | None = None  # known once connected (see :meth:`opened`)
        self._early: list[bytes] = []  # answers read before then (a front-end never speaks first; kept anyway)
        #: Set when the connection is gone: ``True`` if it was drained (its replacement is open).
        self.drained: bool | None = None

    def opened(self, conn: FrameConnection) -> None:
        self.link_id = self.core.link_opened(self.group, self.member, conn.peer, conn)
        early, self._early = self._early, []
        if early:
            self.frames_received(early)

    def frames_received(self, frames: list[bytes]) -> None:
        link_id = self.link_id
        if link_id is None:
            self._early.extend(frames)
            return
        link_frame = self.core.link_frame
        for payload in frames:
            link_frame(link_id, payload)

    def connection_closed(self, error: BaseException | None) -> None:
        link_id = self.link_id
        if link_id is None:
            self.drained = False
            return
        if isinstance(error, FramingError):
            self.core.link_framing_error(link_id, error)
        elif error is not None:
            self.core.link_ended(link_id, error)
        self.drained = self.core.link_lost(link_id)
