"""The NAC service: the I/O shell around :class:`nac.core.NacCore` (every rule, counter and log line), on the
runtime's serving.

Terminal side: the terminal listener serves each connection (accept back-off on EMFILE, a connection cap);
the core routes its frames and hands its answers to the connection's sink. Upstream side: each member of each
route group keeps one persistent connection carrying many requests at once; requests forwarded in one loop
turn share one write; answers go back through the core, which finds their terminal by return address. A
member that is down or dies is reconnected with exponential backoff and skipped meanwhile (the router
round-robins over connected members only); requests in flight on it are dropped and counted (the terminal's
own timeout and reversal take over). A connection holding too many timed-out requests is drained, not cut: a
replacement opens at once, and the old one closes when no live request is left on it. Answer timeouts are
swept at :meth:`NacCore.next_deadline`, not by polling. With ``peer_wait``, a route that has had no member
connected that long after the start ends the NAC (:class:`RoutesUnreachable`). The status port is
:mod:`nac.status`.

Connections are carried by one of two paths with the same rules (all of them in the core): on asyncio without
TLS the callback path (:mod:`nac.callbackpath`: protocol callbacks, no task per connection or frame), else the
task path (:mod:`nac.taskpath`: a task per connection; trio, and TLS front-end links). Terminals are always
plain TCP, so on asyncio they take the callback path even when the front-end links use TLS.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import ssl
from typing import Final

import anyio
import anyio.abc

from acqkit import frameprotocol
from acqkit.frameprotocol import callbacks_apply, serve_frames
from acqkit.metrics import IN_FLIGHT, QUEUE_DEPTH
from acqkit.netio import connect, serve_tcp
from acqkit.rules import RuleBook
from acqkit.traceflush import flush_traces
from nac.callbackpath import LinkSession, TerminalOpener
from nac.core import NacCore, RoutesUnreachable
from nac.limits import NacLimits
from nac.routes import Member, RouteTable
from nac.status import MAX_STATUS_CONNECTIONS, answer_status
from nac.taskpath import TaskTerminals, run_link
from nac.tracing import FrameTracer

log = logging.getLogger("acqsim.nac")

#: Terminal connections beyond ``max_connections`` that still get a handler, so the router counts and logs
#: the refusal; past this headroom the runtime's serving closes them without one.
REFUSAL_HEADROOM: Final = 64
#: The name a front-end's TLS certificate must carry (every member of every route is a front-end).
FRONTEND_SERVICE_NAME: Final = "frontend"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class NacPorts:
    """What :meth:`NacServer.serve` reports through ``task_status``: the bound ports."""

    listen: int
    status: int | None


class NacServer:
    def __init__(
        self,
        table: RouteTable,
        limits: NacLimits | None = None,
        *,
        trace: FrameTracer | None = None,
        upstream_tls: ssl.SSLContext | None = None,
        rules: RuleBook | None = None,
        sticky: bool = False,
    ) -> None:
        """``upstream_tls``: a client context of :mod:`acqkit.tls`; each front-end must then prove it is
        ``frontend`` (terminals stay on plain TCP, as most POS links are). ``rules``: scripted answers and
        faults (:mod:`nac.scripted`). ``sticky``: keep each terminal on one member of its group (a pool of
        front-ends with their own journals, :mod:`nac.sticky`) instead of round robin."""
        self.table = table
        self._upstream_tls = upstream_tls
        self.limits = limits or NacLimits()
        self.core = NacCore(table, self.limits, trace=trace, rules=rules, sticky=sticky)
        self.router = self.core.router
        self.stats = self.core.stats
        self._trace = trace
        self._task_group: anyio.abc.TaskGroup | None = None
        self._all_groups_up: anyio.Event | None = None  # set when every group has (see :meth:`_require_routes`)

    async def serve(
        self,
        host: str,
        port: int,
        *,
        status_port: int | None = None,
        peer_wait: float | None = None,
        task_status: anyio.abc.TaskStatus[NacPorts] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Listen for terminals on ``host:port`` (and for status queries on ``status_port``) until cancelled.
        With ``peer_wait``, raise :class:`RoutesUnreachable` if some route has no member connected that many
        seconds after the start (a NAC started alone, pointed at no front-end); later losses only reconnect."""
        async with anyio.create_task_group() as tg:
            self._task_group = tg
            self._all_groups_up = anyio.Event()
            self.core.on_all_groups_up = self._all_groups_up.set
            if self._trace is not None:
                await tg.start(flush_traces, self._trace)
            if peer_wait is not None:
                tg.start_soon(self._require_routes, peer_wait)
            bound_status = None
            if status_port is not None:
                bound_status = await tg.start(
                    functools.partial(
                        serve_tcp,
                        host,
                        status_port,
                        functools.partial(answer_status, self.stats),
                        name="NAC status",
                        max_connections=MAX_STATUS_CONNECTIONS,
                    )
                )
            bound = await tg.start(self._serve_terminals, host, port)
            for group, members in self.table.groups.items():
                for member in members:
                    tg.start_soon(self._keep_upstream, group, member)
            tg.start_soon(self._expire_forever)
            # read when scraped: nothing is counted twice and the hot path pays nothing
            IN_FLIGHT.labels(service="nac").set_function(lambda: self.router.requests_waiting)
            QUEUE_DEPTH.labels(service="nac", queue="answers_to_terminals").set_function(
                lambda: self.core.answers_queued
            )
            log.info("NAC listening on %s:%d (status port %s)", host, bound, bound_status)
            task_status.started(NacPorts(listen=bound, status=bound_status))

    async def _serve_terminals(self, host: str, port: int, *, task_status: anyio.abc.TaskStatus[int]) -> None:
        limits = self.limits
        max_connections = limits.max_connections + REFUSAL_HEADROOM
        if callbacks_apply():
            await serve_frames(
                host,
                port,
                TerminalOpener(self.core),
                name="NAC",
                max_frame_len=limits.max_frame_len,
                max_connections=max_connections,
                idle_timeout=limits.idle_timeout_s,
                send_timeout=limits.send_timeout_s,
                task_status=task_status,
            )
        else:
            assert self._task_group is not None
            await serve_tcp(
                host,
                port,
                TaskTerminals(self.core, self._task_group).handle,
                name="NAC",
                max_frame_len=limits.max_frame_len,
                max_connections=max_connections,
                task_status=task_status,
            )

    # -- upstream ------------------------------------------------------------------------------------------

    async def _keep_upstream(self, group: str, member: Member) -> None:
        """Keep one connection to ``member`` open for ever, reconnecting with exponential backoff; hand the
        duty to a fresh task when the connection is being drained (see :meth:`NacCore.expire`)."""
        backoff = self.limits.backoff_min_s
        carry = self._carry_link_callbacks if callbacks_apply(self._upstream_tls) else self._carry_link_tasks
        while True:
            try:
                drained = await carry(group, member)
            except (OSError, TimeoutError) as exc:
                self.core.link_connect_failed(group, member, exc)
            except Exception:  # a bug must cost this connection, not the NAC
                log.exception("route %s: connection to %s failed", group, member)
                backoff = self.limits.backoff_min_s
            else:
                if drained:
                    return  # its replacement keeps the member connected
                backoff = self.limits.backoff_min_s
            await anyio.sleep(backoff)
            backoff = min(backoff * 2, self.limits.backoff_max_s)

    async def _carry_link_callbacks(self, group: str, member: Member) -> bool:
        """Connect to ``member`` and carry the connection on the callback path until it ends; ``True`` if it was
        drained. ``OSError``/``TimeoutError``: the connection could not be opened."""
        session = LinkSession(self.core, group, member)
        conn = await frameprotocol.connect(
            member.host,
            member.port,
            lambda _conn: session,
            timeout=self.limits.connect_timeout_s,
            name=f"NAC route {group}",
            max_frame_len=self.limits.max_frame_len,
            send_timeout=self.limits.send_timeout_s,
        )
        try:
            session.opened(conn)
            await conn.wait_closed()
        finally:
            await conn.aclose()  # at once if it is gone already; shielded when the NAC is stopping
        return bool(session.drained)

    async def _carry_link_tasks(self, group: str, member: Member) -> bool:
        """The same on the task path (TLS, trio)."""
        conn = await connect(
            member.host,
            member.port,
            timeout=self.limits.connect_timeout_s,
            max_frame_len=self.limits.max_frame_len,
            tls=self._upstream_tls,
            server_name=FRONTEND_SERVICE_NAME,
        )
        return await run_link(self.core, conn, group, member)

    async def _expire_forever(self) -> None:
        """Time out overdue requests at the core's next deadline (every request gets the same answer timeout,
        so a later request never has an earlier deadline); with none waiting, wait for one."""
        assert self._task_group is not None
        while True:
            deadline = self.core.next_deadline()
            if deadline is None:
                first = anyio.Event()
                self.core.on_first_deadline = first.set
                await first.wait()
                continue
            await anyio.sleep_until(deadline)
            for group, member in self.core.expire(anyio.current_time()):
                self._task_group.start_soon(self._keep_upstream, group, member)

    async def _require_routes(self, window: float) -> None:
        assert self._all_groups_up is not None
        with anyio.move_on_after(window):
            await self._all_groups_up.wait()
        error = self.core.unreachable(window)
        if error is not None:
            raise error


__all__ = ["FRONTEND_SERVICE_NAME", "REFUSAL_HEADROOM", "NacPorts", "NacServer", "RoutesUnreachable"]
