"""The NAC service: a thin anyio shell around :class:`nac.router.Router`, on the runtime's serving.

Terminal side: the terminal listener is :func:`acqkit.netio.serve_tcp` (accept back-off on EMFILE, a
connection cap, a task per connection in the server's task group); answers go into the terminal's
:class:`nac.outbox.TerminalOutbox` (at most ``max_in_flight``), whose writer is started with the first answer.
Upstream side: each member of each route group keeps one persistent connection carrying many requests at
once; requests are written with :meth:`FramedConnection.send`, whose concurrent senders share one write (the
runtime's one write path, which the outboxes use too); a reader task per connection hands answers to the
router, which finds their terminal by return address. A member that is down or dies is reconnected with
exponential backoff and skipped meanwhile (the router round-robins over connected members only); requests in
flight on it are dropped and counted (the terminal's own timeout and reversal take over). A connection
holding too many timed-out requests is drained, not cut: a replacement opens at once, and the old one closes
when no live request is left on it. Answer timeouts are swept at :meth:`Router.next_deadline`, not by
polling. With ``peer_wait``, a route that has had no member connected that long after the start ends the
NAC (:class:`RoutesUnreachable`). The status port is :mod:`nac.status`.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import ssl
from typing import Final

import anyio
import anyio.abc

from acqkit import txnlog
from acqkit.metrics import IN_FLIGHT, QUEUE_DEPTH
from acqkit.netio import FramedConnection, connect, serve_tcp
from acqkit.peerclient import PeerUnavailable
from acqkit.rules import ActionKind, Hit, RuleBook, hit_note
from acqkit.traceflush import flush_traces
from nac.events import CloseReason, Deliver, Drop, DropReason, Forward, framing_close_reason
from nac.limits import IDLE_CHECK_S, NacLimits
from nac.linkwriter import LinkWriter
from nac.outbox import TerminalOutbox
from nac.router import Router
from nac.routes import Member, RouteTable
from nac.scripted import ScriptedNac, scripted_answer
from nac.status import MAX_STATUS_CONNECTIONS, answer_status
from nac.tracing import FrameTracer
from wire.errors import FramingError

log = logging.getLogger("acqsim.nac")

#: Terminal connections beyond ``max_connections`` that still get a handler, so the router counts and logs
#: the refusal; past this headroom the runtime's serving closes them without one.
REFUSAL_HEADROOM: Final = 64
#: The name a front-end's TLS certificate must carry (every member of every route is a front-end).
FRONTEND_SERVICE_NAME: Final = "frontend"


class RoutesUnreachable(PeerUnavailable):
    """A route group had no member connected within the NAC's ``peer_wait`` after it started."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class NacPorts:
    """What :meth:`NacServer.serve` reports through ``task_status``: the bound ports."""

    listen: int
    status: int | None


@dataclasses.dataclass(slots=True, eq=False)
class _UpLink:
    """One upstream connection and what the shell knows of it beyond the router."""

    conn: FramedConnection
    group: str
    member: Member
    #: Writes the requests forwarded on this connection (its task runs beside the connection's reader).
    writer: LinkWriter
    #: Recycled for timed-out requests: a replacement is open; this one closes once no live request is left.
    draining: bool = False


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
        self.router = Router(table, self.limits, sticky=sticky)
        self.stats = self.router.stats
        self._trace = trace
        self._outboxes: dict[int, TerminalOutbox] = {}
        self._task_group: anyio.abc.TaskGroup | None = None
        self._links: dict[int, _UpLink] = {}
        self._first_deadline: anyio.Event | None = None  # set when a request is forwarded while none waited
        self._groups_up: set[str] = set()  # route groups that have had a member connected
        self._all_groups_up: anyio.Event | None = None  # set when every group has (see :meth:`_require_routes`)
        self._scripted = ScriptedNac(rules) if rules is not None else None

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
            bound = await tg.start(
                functools.partial(
                    serve_tcp,
                    host,
                    port,
                    self._handle_terminal,
                    name="NAC",
                    max_frame_len=self.limits.max_frame_len,
                    max_connections=self.limits.max_connections + REFUSAL_HEADROOM,
                )
            )
            for group, members in self.table.groups.items():
                for member in members:
                    tg.start_soon(self._keep_upstream, group, member)
            tg.start_soon(self._expire_forever)
            # read when scraped: nothing is counted twice and the hot path pays nothing
            IN_FLIGHT.labels(service="nac").set_function(lambda: self.router.requests_waiting)
            QUEUE_DEPTH.labels(service="nac", queue="answers_to_terminals").set_function(
                lambda: sum(len(outbox) for outbox in self._outboxes.values())
            )
            log.info("NAC listening on %s:%d (status port %s)", host, bound, bound_status)
            task_status.started(NacPorts(listen=bound, status=bound_status))

    # -- terminals -----------------------------------------------------------------------------------------

    async def _handle_terminal(self, conn: FramedConnection) -> None:
        terminal_id = self.router.open_terminal()
        if terminal_id is None:
            log.warning("terminal %s: refused, %d connections open", conn.peer, self.limits.max_connections)
            return  # serve_tcp closes the connection
        self._outboxes[terminal_id] = TerminalOutbox(conn, self.limits, self)
        reason: CloseReason | None = None
        try:
            reason = await self._read_terminal(terminal_id, conn)
        except Exception:
            log.exception("terminal %s: handler failed; closing that connection only", conn.peer)
        finally:
            self._outboxes.pop(terminal_id).close()
            if self._scripted is not None:
                self._scripted.forget(terminal_id)
            self.router.close_terminal(terminal_id, reason)

    async def _read_terminal(self, terminal_id: int, conn: FramedConnection) -> CloseReason | None:
        """Route the terminal's frames until it closes; a reason when the NAC closes it."""
        idle_timeout = self.limits.idle_timeout_s
        idle_check = min(IDLE_CHECK_S, idle_timeout / 10)
        try:
            with anyio.CancelScope() as idle:
                last_frame_at = anyio.current_time()
                idle.deadline = last_frame_at + idle_timeout
                while (payload := await conn.receive()) is not None:
                    if (now := anyio.current_time()) - last_frame_at >= idle_check:
                        last_frame_at, idle.deadline = now, now + idle_timeout
                    reason = await self._route_request(terminal_id, conn, payload, now)
                    if reason is not None:
                        return reason
            if idle.cancelled_caught:
                log.info("terminal %s: idle for %.0f s, closing", conn.peer, idle_timeout)
                return CloseReason.IDLE
        except FramingError as exc:
            reason = framing_close_reason(exc)
            log.warning("terminal %s: closing: %s (%s)", conn.peer, reason, exc)
            return reason
        return None

    async def _route_request(
        self, terminal_id: int, conn: FramedConnection, payload: bytes, now: float
    ) -> CloseReason | None:
        """One request frame of a terminal, received at ``now``: acted on by a rule, forwarded or dropped; a
        reason when the NAC closes the connection for it."""
        hit = None
        if self._scripted is not None:
            hit = self._scripted.on_request(terminal_id, payload)
        if self._trace is not None:
            self._trace.record(direction="in", link="pos", peer=conn.peer, payload=payload, note=hit_note(hit))
        if hit is not None:
            done = await self._act(terminal_id, conn, payload, hit)
            if isinstance(done, CloseReason):
                return done
            if done:
                return None
            now = anyio.current_time()  # a rule may have delayed it
        decision = self.router.from_terminal(terminal_id, payload, now)
        if isinstance(decision, Forward):
            self._forward(decision)
        elif isinstance(decision, Drop):
            log.info("terminal %s: frame dropped: %s", conn.peer, decision.reason)
        else:
            log.warning("terminal %s: closing: %s", conn.peer, decision.reason)
            return decision.reason
        return None

    def answer_written(self, peer: str, payload: bytes) -> None:
        """An answer left for its terminal (:class:`~nac.outbox.OutboxOwner`)."""
        if self._trace is not None:
            self._trace.record(direction="out", link="pos", peer=peer, payload=payload)
        txnlog.log_pos_answer("nac", payload)

    def terminal_send_failed(self, lost: int) -> None:
        """A terminal took no answer for ``send_timeout_s`` (:class:`~nac.outbox.OutboxOwner`)."""
        self.stats.closed[CloseReason.SEND_FAILED] += 1
        self.stats.dropped[DropReason.TERMINAL_NOT_READING] += lost

    async def _act(self, terminal_id: int, conn: FramedConnection, payload: bytes, hit: Hit) -> bool | CloseReason:
        """Carry out a rule's action on a terminal request: ``True`` if it is dealt with (not to be routed), a
        reason to close the connection, or ``False`` to route it as usual."""
        action = hit.action
        log.info("terminal %s: rule %d (%s): %s", conn.peer, hit.number, hit.rule, action.kind)
        if action.kind is ActionKind.ANSWER:
            answer = scripted_answer(payload, action.code or "")
            if answer is not None:
                self._deliver(Deliver(terminal_id=terminal_id, payload=answer))
            return True
        if action.kind is ActionKind.DELAY:
            await anyio.sleep(action.delay_s)
            return False
        if action.kind is ActionKind.DROP:
            return True
        if action.kind is ActionKind.CLOSE:
            return CloseReason.BY_RULE
        return False  # corrupt_mac, answer_twice: routed; ScriptedNac changes the answer

    def _forward(self, forward: Forward) -> None:
        """Queue the request for its upstream connection's writer (:class:`nac.linkwriter.LinkWriter`): requests
        forwarded in the same loop turn by other terminals' readers share its write."""
        if self._first_deadline is not None:
            self._first_deadline.set()  # the expiry sweep had nothing to wait for
            self._first_deadline = None
        link = self._links.get(forward.link_id)
        if link is None:
            return  # the link died an instant ago; link_down has counted this request as dropped
        if self._trace is not None:
            self._trace.record(direction="out", link="pos", peer=link.conn.peer, payload=forward.payload)
        link.writer.put(forward.payload)

    # -- upstream ------------------------------------------------------------------------------------------

    async def _keep_upstream(self, group: str, member: Member) -> None:
        """Keep one connection to ``member`` open for ever, reconnecting with exponential backoff; hand the
        duty to a fresh task when the connection is being drained (see :meth:`_recycle`)."""
        name = str(member)
        backoff = self.limits.backoff_min_s
        while True:
            try:
                conn = await connect(
                    member.host,
                    member.port,
                    timeout=self.limits.connect_timeout_s,
                    max_frame_len=self.limits.max_frame_len,
                    tls=self._upstream_tls,
                    server_name=FRONTEND_SERVICE_NAME,
                )
            except (OSError, TimeoutError) as exc:
                self.stats.members[name].connect_failures += 1
                log.debug("route %s: cannot connect to %s (%s)", group, name, type(exc).__name__)
            else:
                backoff = self.limits.backoff_min_s
                link = _UpLink(
                    conn=conn, group=group, member=member, writer=LinkWriter(conn, self.limits.send_timeout_s)
                )
                try:
                    await self._run_link(link)
                except Exception:  # a bug must cost this connection, not the NAC
                    log.exception("route %s: connection to %s failed", group, name)
                if link.draining:
                    return  # its replacement keeps the member connected
            await anyio.sleep(backoff)
            backoff = min(backoff * 2, self.limits.backoff_max_s)

    async def _run_link(self, link: _UpLink) -> None:
        name = str(link.member)
        link_id = self.router.link_up(link.group, name)
        self._links[link_id] = link
        self._groups_up.add(link.group)
        if self._all_groups_up is not None and self._groups_up >= set(self.table.groups):
            self._all_groups_up.set()
        log.info("route %s: connected to %s (link %d)", link.group, name, link_id)
        try:
            async with anyio.create_task_group() as writing:
                writing.start_soon(link.writer.run)
                try:
                    await self._read_link(link_id, link)
                finally:
                    writing.cancel_scope.cancel()
        finally:
            del self._links[link_id]
            dropped = self.router.link_down(link_id)
            await link.conn.aclose()
        if link.draining:
            log.info("route %s: drained connection to %s closed (link %d)", link.group, name, link_id)
        else:
            log.warning("route %s: lost %s, %d request(s) in flight dropped", link.group, name, dropped)

    async def _read_link(self, link_id: int, link: _UpLink) -> None:
        """Hand the front-end's answers to the router until the connection ends or gets out of step."""
        name = str(link.member)
        try:
            while (payload := await link.conn.receive()) is not None:
                if self._trace is not None:
                    self._trace.record(direction="in", link="pos", peer=name, payload=payload)
                decision = self.router.from_upstream(link_id, payload)
                if isinstance(decision, Deliver):
                    self._deliver(decision)
                else:
                    log.info("route %s: answer from %s dropped: %s", link.group, name, decision.reason)
                if link.draining:
                    await self._close_if_drained(link_id, link)
        except FramingError as exc:
            log.warning("route %s: %s sent a bad frame (%s), reconnecting", link.group, name, exc)
        except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
            log.info("route %s: connection to %s ended (%s)", link.group, name, type(exc).__name__)

    async def _recycle(self, link_id: int, reason: CloseReason) -> None:
        """The router took ``link_id`` out of rotation (too many timed-out requests hold their addresses):
        open a replacement now and close this one once its live requests are answered or timed out, so the
        terminals whose requests are on it lose nothing (closing frees the quarantined addresses)."""
        link = self._links.get(link_id)
        if link is None or link.draining or self._task_group is None:
            return
        link.draining = True
        log.warning("upstream %s: recycling (%s): draining, a new connection opens now", link.conn.peer, reason)
        self._task_group.start_soon(self._keep_upstream, link.group, link.member)
        await self._close_if_drained(link_id, link)

    async def _close_if_drained(self, link_id: int, link: _UpLink) -> None:
        if self.router.live_requests(link_id) == 0:
            await link.conn.aclose()  # its reader sees the end; link_down frees the quarantined addresses

    def _deliver(self, deliver: Deliver) -> None:
        outbox = self._outboxes.get(deliver.terminal_id)
        scripted = self._scripted
        # a rule may mangle an answer or deliver it twice (nac.scripted); otherwise it goes as it came
        payloads = [deliver.payload] if scripted is None else scripted.on_answer(deliver.terminal_id, deliver.payload)
        for payload in payloads:
            if outbox is None or self._task_group is None or not outbox.put(payload, self._task_group):
                self.stats.dropped[DropReason.TERMINAL_NOT_READING] += 1

    async def _expire_forever(self) -> None:
        """Time out overdue requests at the router's next deadline (every request gets the same answer
        timeout, so a later request never has an earlier deadline); with none waiting, wait for one."""
        while True:
            deadline = self.router.next_deadline()
            if deadline is None:
                self._first_deadline = anyio.Event()
                await self._first_deadline.wait()
                continue
            await anyio.sleep_until(deadline)
            for close in self.router.expire(anyio.current_time()):
                await self._recycle(close.link_id, close.reason)
            for link_id, link in list(self._links.items()):
                if link.draining:  # its last live request may just have timed out
                    await self._close_if_drained(link_id, link)

    async def _require_routes(self, window: float) -> None:
        assert self._all_groups_up is not None
        with anyio.move_on_after(window):
            await self._all_groups_up.wait()
        missing = sorted(set(self.table.groups) - self._groups_up)
        if missing:
            members = ", ".join(str(m) for group in missing for m in self.table.groups[group])
            raise RoutesUnreachable(
                "front-end", members, "connect", f"no member of route group {', '.join(missing)} within {window:g} s"
            )
