"""The NAC's task path: a task per connection on :mod:`acqkit.netio` (trio, and TLS on any backend).

Terminals: :func:`acqkit.netio.serve_tcp` runs :meth:`TaskTerminals.handle` per connection; answers go into
the terminal's :class:`nac.outbox.TerminalOutbox`, whose writer task starts with the first answer. Upstream:
:func:`run_link` reads a front-end connection's answers while a :class:`nac.linkwriter.LinkWriter` task writes
its requests. Every rule is :class:`nac.core.NacCore`'s; this module only reads, writes and keeps time.
"""

from __future__ import annotations

import logging

import anyio
import anyio.abc

from acqkit.netio import FramedConnection
from nac.core import Delay, NacCore
from nac.events import CloseReason
from nac.limits import IDLE_CHECK_S
from nac.linkwriter import LinkWriter
from nac.outbox import TerminalOutbox
from nac.routes import Member
from wire.errors import FramingError

log = logging.getLogger("acqsim.nac")


class TaskTerminals:
    """Terminal connections served by a task each (the handler given to ``serve_tcp``)."""

    def __init__(self, core: NacCore, task_group: anyio.abc.TaskGroup) -> None:
        """``task_group``: where the terminals' answer writers run (the NAC server's)."""
        self.core = core
        self._task_group = task_group

    async def handle(self, conn: FramedConnection) -> None:
        core = self.core
        outbox = TerminalOutbox(conn, core.limits, core, self._task_group)
        terminal_id = core.terminal_opened(conn.peer, outbox)
        if terminal_id is None:
            return  # serve_tcp closes the connection
        reason: CloseReason | None = None
        try:
            reason = await self._read(terminal_id, conn)
        except Exception:
            log.exception("terminal %s: handler failed; closing that connection only", conn.peer)
        finally:
            outbox.close()
            core.terminal_closed(terminal_id, reason)

    async def _read(self, terminal_id: int, conn: FramedConnection) -> CloseReason | None:
        """Route the terminal's frames until it closes; a reason when the NAC closes it."""
        core = self.core
        idle_timeout = core.limits.idle_timeout_s
        idle_check = min(IDLE_CHECK_S, idle_timeout / 10)
        try:
            with anyio.CancelScope() as idle:
                last_frame_at = anyio.current_time()
                idle.deadline = last_frame_at + idle_timeout
                while (payload := await conn.receive()) is not None:
                    if (now := anyio.current_time()) - last_frame_at >= idle_check:
                        last_frame_at, idle.deadline = now, now + idle_timeout
                    step = core.terminal_frame(terminal_id, conn.peer, payload, now)
                    if isinstance(step, Delay):
                        await anyio.sleep(step.seconds)
                        step = core.route(terminal_id, conn.peer, payload, anyio.current_time())
                    if step is not None:
                        return step
            if idle.cancelled_caught:
                return core.terminal_idle(conn.peer)
        except FramingError as exc:
            return core.terminal_framing_error(conn.peer, exc)
        return None


async def run_link(core: NacCore, conn: FramedConnection, group: str, member: Member) -> bool:
    """Carry one front-end connection until it ends; ``True`` if it was drained (its replacement is open)."""
    writer = LinkWriter(conn, core.limits.send_timeout_s)
    link_id = core.link_opened(group, member, conn.peer, writer)
    try:
        async with anyio.create_task_group() as writing:
            writing.start_soon(writer.run)
            try:
                await _read_link(core, link_id, conn)
            finally:
                writing.cancel_scope.cancel()
    finally:
        draining = core.link_lost(link_id)
        await conn.aclose()
    return draining


async def _read_link(core: NacCore, link_id: int, conn: FramedConnection) -> None:
    """Hand the front-end's answers to the core until the connection ends or gets out of step."""
    try:
        while (payload := await conn.receive()) is not None:
            core.link_frame(link_id, payload)
    except FramingError as exc:
        core.link_framing_error(link_id, exc)
    except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
        core.link_ended(link_id, exc)
