"""The NAC service: a thin anyio shell around :class:`nac.router.Router`.

Terminal side: one listener and one reader task per terminal connection; answers go into the terminal's
outbox (at most ``max_in_flight``), drained by a writer task started with the terminal's first answer and
ended with the connection, so a terminal that does not read can never stall an upstream connection and a
terminal that never transacts costs one task.
Upstream side:
each member of each route group keeps one persistent connection carrying many requests at once; a reader
task per connection hands answers to the router, which finds their terminal by return address. A member
that is down or dies is reconnected with exponential backoff and skipped meanwhile (the router round-robins
over connected members only); requests in flight on it are dropped and counted (the terminal's own timeout
and reversal take over). A status listener, when enabled, answers every connection with one JSON document.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import logging
import ssl
from collections.abc import Callable, Coroutine
from typing import Any, Final, Literal, Protocol

import anyio
import anyio.abc

from acqkit.netio import FramedConnection, connect, peer_name
from nac.events import CloseReason, Deliver, Drop, DropReason, Forward
from nac.limits import MAX_LINK_BUFFER_BYTES, NacLimits
from nac.router import Router
from nac.routes import Member, RouteTable
from wire.errors import FramingError
from wire.framing import LENGTH_PREFIX_LEN, OVERSIZED, TRUNCATED, frame

log = logging.getLogger("acqsim.nac")

#: Longest wait between two runs of the answer-timeout sweep (shorter when the answer timeout is short).
EXPIRY_TICK_S: Final = 0.5
#: After a failed accept (e.g. no file descriptor left) the listener waits this long before accepting again.
ACCEPT_RETRY_S: Final = 0.5
#: The name a front-end's TLS certificate must carry (every member of every route is a front-end).
FRONTEND_SERVICE_NAME: Final = "frontend"
#: A status client gets its JSON document within this time or is dropped.
STATUS_SEND_TIMEOUT_S: Final = 2.0


class FrameTracer(Protocol):
    """What the NAC needs of ``wire.trace.TraceWriter`` (structural, so tracing stays optional)."""

    def record(
        self,
        *,
        direction: Literal["in", "out"],
        link: Literal["pos", "host", "hsm"],
        peer: str,
        payload: bytes,
        correlation_id: str | None = None,
        note: str | None = None,
    ) -> None: ...

    def close(self) -> None: ...


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class NacPorts:
    """What :meth:`NacServer.serve` reports through ``task_status``: the bound ports."""

    listen: int
    status: int | None


def framing_close_reason(exc: FramingError) -> CloseReason:
    """Which bad-length case a :class:`FramingError` from ``wire.framing`` is."""
    if exc.kind == OVERSIZED:
        return CloseReason.OVERSIZED_FRAME
    if exc.kind == TRUNCATED:
        return CloseReason.TRUNCATED_FRAME
    return CloseReason.BAD_LENGTH


class _Outbox:
    """Answers waiting to be written to one terminal connection."""

    __slots__ = ("conn", "pending", "wakeup", "writer_scope")

    def __init__(self, conn: FramedConnection) -> None:
        self.conn = conn
        self.pending: collections.deque[bytes] = collections.deque()
        self.wakeup: anyio.Event | None = None  # set when an answer is queued while the writer waits
        self.writer_scope: anyio.CancelScope | None = None  # the writer task, once started


class _LinkOutbox:
    """Framed requests waiting to be written to one upstream connection (several go out in one write)."""

    __slots__ = ("conn", "pending", "pending_bytes", "room", "wakeup")

    def __init__(self, conn: FramedConnection) -> None:
        self.conn = conn
        self.pending: list[bytes] = []
        self.pending_bytes = 0
        self.wakeup: anyio.Event | None = None  # set when a request is queued while the writer waits
        self.room: anyio.Event | None = None  # set when the writer has taken a full queue


class NacServer:
    def __init__(
        self,
        table: RouteTable,
        limits: NacLimits | None = None,
        *,
        trace: FrameTracer | None = None,
        upstream_tls: ssl.SSLContext | None = None,
    ) -> None:
        """``upstream_tls``: a client context of :mod:`acqkit.tls`; each front-end must then prove it is
        ``frontend`` (terminals stay on plain TCP, as most POS links are)."""
        self.table = table
        self._upstream_tls = upstream_tls
        self.limits = limits or NacLimits()
        self.router = Router(table, self.limits)
        self.stats = self.router.stats
        self._trace = trace
        self._outboxes: dict[int, _Outbox] = {}
        self._task_group: anyio.abc.TaskGroup | None = None
        self._links: dict[int, _LinkOutbox] = {}

    async def serve(
        self,
        host: str,
        port: int,
        *,
        status_port: int | None = None,
        task_status: anyio.abc.TaskStatus[NacPorts] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Listen for terminals on ``host:port`` (and for status queries on ``status_port``) until cancelled."""
        async with contextlib.AsyncExitStack() as stack:
            listener = await stack.enter_async_context(
                await anyio.create_tcp_listener(local_host=host, local_port=port)
            )
            status_listener = None
            if status_port is not None:
                status_listener = await stack.enter_async_context(
                    await anyio.create_tcp_listener(local_host=host, local_port=status_port)
                )
            tg = self._task_group = await stack.enter_async_context(anyio.create_task_group())
            for group, members in self.table.groups.items():
                for member in members:
                    tg.start_soon(self._keep_upstream, group, member)
            tg.start_soon(self._expire_forever)
            bound_status = None
            if status_listener is not None:
                bound_status = status_listener.extra(anyio.abc.SocketAttribute.local_port)
                for one in status_listener.listeners:
                    tg.start_soon(self._accept_forever, one, self._answer_status, tg)
            bound = listener.extra(anyio.abc.SocketAttribute.local_port)
            log.info("NAC listening on %s:%d (status port %s)", host, bound, bound_status)
            task_status.started(NacPorts(listen=bound, status=bound_status))
            for one in listener.listeners:  # one per address family the host resolves to
                tg.start_soon(self._accept_forever, one, self._handle_terminal, tg)

    async def _accept_forever(
        self,
        listener: anyio.abc.Listener[anyio.abc.SocketStream],
        handler: Callable[[anyio.abc.SocketStream], Coroutine[Any, Any, None]],
        tg: anyio.abc.TaskGroup,
    ) -> None:
        """Like ``Listener.serve``, but an accept error (out of file descriptors, say) pauses accepting
        instead of ending the service."""
        if not isinstance(listener, anyio.abc.SocketListener):
            await listener.serve(handler, tg)  # not a TCP socket listener: no accept() to guard
            return
        while True:
            try:
                stream = await listener.accept()
            except (OSError, anyio.BrokenResourceError) as exc:  # trio's backend reports EMFILE as broken
                log.warning("accept failed (%r); retrying in %.1f s", exc.__cause__ or exc, ACCEPT_RETRY_S)
                await anyio.sleep(ACCEPT_RETRY_S)
                continue
            tg.start_soon(handler, stream)

    # -- terminals -----------------------------------------------------------------------------------------

    async def _handle_terminal(self, stream: anyio.abc.SocketStream) -> None:
        conn = FramedConnection(stream, max_frame_len=self.limits.max_frame_len, peer=peer_name(stream))
        terminal_id = self.router.open_terminal()
        if terminal_id is None:
            log.warning("terminal %s: refused, %d connections open", conn.peer, self.limits.max_connections)
            await conn.aclose()
            return
        self._outboxes[terminal_id] = _Outbox(conn)
        reason: CloseReason | None = None
        try:
            reason = await self._read_terminal(terminal_id, conn)
        except Exception:
            log.exception("terminal %s: handler failed; closing that connection only", conn.peer)
        finally:
            outbox = self._outboxes.pop(terminal_id)
            if outbox.writer_scope is not None:
                outbox.writer_scope.cancel()
            self.router.close_terminal(terminal_id, reason)
            await conn.aclose()

    async def _read_terminal(self, terminal_id: int, conn: FramedConnection) -> CloseReason | None:
        """Route the terminal's frames until it closes; a reason when the NAC closes it."""
        try:
            while (payload := await conn.receive(self.limits.idle_timeout_s)) is not None:
                if self._trace is not None:
                    self._trace.record(direction="in", link="pos", peer=conn.peer, payload=payload)
                decision = self.router.from_terminal(terminal_id, payload, anyio.current_time())
                if isinstance(decision, Forward):
                    await self._forward(decision)
                elif isinstance(decision, Drop):
                    log.info("terminal %s: frame dropped: %s", conn.peer, decision.reason)
                else:
                    log.warning("terminal %s: closing: %s", conn.peer, decision.reason)
                    return decision.reason
        except FramingError as exc:
            reason = framing_close_reason(exc)
            log.warning("terminal %s: closing: %s (%s)", conn.peer, reason, exc)
            return reason
        except TimeoutError:
            log.info("terminal %s: idle for %.0f s, closing", conn.peer, self.limits.idle_timeout_s)
            return CloseReason.IDLE
        return None

    async def _drain(self, outbox: _Outbox, scope: anyio.CancelScope) -> None:
        """Write the terminal's answers as they are queued, until its connection ends (``scope`` cancelled)."""
        with scope:
            try:
                while True:
                    if not outbox.pending:
                        outbox.wakeup = anyio.Event()
                        await outbox.wakeup.wait()
                        continue
                    payload = outbox.pending[0]  # left queued until written, so a failed write counts as a drop
                    with anyio.fail_after(self.limits.send_timeout_s):
                        await outbox.conn.send(payload)
                    outbox.pending.popleft()
                    if self._trace is not None:
                        self._trace.record(direction="out", link="pos", peer=outbox.conn.peer, payload=payload)
            except (TimeoutError, OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
                log.info("terminal %s: cannot send, closing", outbox.conn.peer)
                self.stats.closed[CloseReason.SEND_FAILED] += 1
                self.stats.dropped[DropReason.TERMINAL_NOT_READING] += len(outbox.pending)
                outbox.pending.clear()
                await outbox.conn.aclose()  # its reader sees the end and closes the terminal in the router

    async def _forward(self, forward: Forward) -> None:
        """Queue the request on its upstream connection; wait (bounded) only when that queue is full."""
        outbox = self._links.get(forward.link_id)
        if outbox is None:
            return  # the link died an instant ago; link_down has counted this request as dropped
        outbox.pending.append(frame(forward.payload, max_frame_len=self.limits.max_frame_len))
        outbox.pending_bytes += LENGTH_PREFIX_LEN + len(forward.payload)
        if outbox.wakeup is not None:
            outbox.wakeup.set()
        if self._trace is not None:
            self._trace.record(direction="out", link="pos", peer=outbox.conn.peer, payload=forward.payload)
        if outbox.pending_bytes > MAX_LINK_BUFFER_BYTES:
            if outbox.room is None:
                outbox.room = anyio.Event()
            with anyio.move_on_after(self.limits.send_timeout_s):
                await outbox.room.wait()  # backpressure: this terminal's next frame waits for the writer

    # -- upstream ------------------------------------------------------------------------------------------

    async def _keep_upstream(self, group: str, member: Member) -> None:
        """Keep one connection to ``member`` open for ever, reconnecting with exponential backoff."""
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
                try:
                    await self._run_link(group, name, conn)
                except Exception:  # a bug must cost this connection, not the NAC
                    log.exception("route %s: connection to %s failed", group, name)
            await anyio.sleep(backoff)
            backoff = min(backoff * 2, self.limits.backoff_max_s)

    async def _run_link(self, group: str, name: str, conn: FramedConnection) -> None:
        link_id = self.router.link_up(group, name)
        outbox = self._links[link_id] = _LinkOutbox(conn)
        log.info("route %s: connected to %s (link %d)", group, name, link_id)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._write_link, outbox)
                await self._read_link(link_id, group, name, conn)
                tg.cancel_scope.cancel()
        finally:
            del self._links[link_id]
            if outbox.room is not None:
                outbox.room.set()
            dropped = self.router.link_down(link_id)
            await conn.aclose()
        log.warning("route %s: lost %s, %d request(s) in flight dropped", group, name, dropped)

    async def _read_link(self, link_id: int, group: str, name: str, conn: FramedConnection) -> None:
        """Hand the front-end's answers to the router until the connection ends or gets out of step."""
        try:
            while (payload := await conn.receive()) is not None:
                if self._trace is not None:
                    self._trace.record(direction="in", link="pos", peer=name, payload=payload)
                decision = self.router.from_upstream(link_id, payload)
                if isinstance(decision, Deliver):
                    self._deliver(decision)
                else:
                    log.info("route %s: answer from %s dropped: %s", group, name, decision.reason)
        except FramingError as exc:
            log.warning("route %s: %s sent a bad frame (%s), reconnecting", group, name, exc)

    async def _write_link(self, outbox: _LinkOutbox) -> None:
        """Write queued requests to the upstream connection, all that are waiting in one write."""
        try:
            while True:
                if not outbox.pending:
                    outbox.wakeup = anyio.Event()
                    await outbox.wakeup.wait()
                    continue
                batch = b"".join(outbox.pending)
                outbox.pending.clear()
                outbox.pending_bytes = 0
                if outbox.room is not None:
                    outbox.room.set()
                    outbox.room = None
                with anyio.fail_after(self.limits.send_timeout_s):
                    await outbox.conn.stream.send(batch)
        except (TimeoutError, OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
            log.warning("upstream %s: send failed, closing that connection", outbox.conn.peer)
            await outbox.conn.aclose()  # its reader sees the end and tells the router, which counts the drops

    def _deliver(self, deliver: Deliver) -> None:
        outbox = self._outboxes.get(deliver.terminal_id)
        if outbox is None or len(outbox.pending) >= self.limits.max_in_flight or self._task_group is None:
            self.stats.dropped[DropReason.TERMINAL_NOT_READING] += 1
            return
        outbox.pending.append(deliver.payload)
        if outbox.writer_scope is None:
            outbox.writer_scope = anyio.CancelScope()
            self._task_group.start_soon(self._drain, outbox, outbox.writer_scope)
        elif outbox.wakeup is not None:
            outbox.wakeup.set()

    async def _expire_forever(self) -> None:
        tick = min(EXPIRY_TICK_S, self.limits.answer_timeout_s / 4)
        while True:
            await anyio.sleep(tick)
            for close in self.router.expire(anyio.current_time()):
                outbox = self._links.get(close.link_id)
                if outbox is not None:
                    conn = outbox.conn
                    log.warning("upstream %s: closing: %s", conn.peer, close.reason)
                    await conn.aclose()

    # -- status --------------------------------------------------------------------------------------------

    async def _answer_status(self, stream: anyio.abc.SocketStream) -> None:
        document = json.dumps(self.stats.snapshot(), sort_keys=True).encode() + b"\n"
        try:
            with anyio.fail_after(STATUS_SEND_TIMEOUT_S):
                await stream.send(document)
        except (TimeoutError, OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
            log.info("status client went away")
        finally:
            with anyio.move_on_after(STATUS_SEND_TIMEOUT_S, shield=True):
                await stream.aclose()


async def fetch_stats(host: str, port: int, *, timeout: float = STATUS_SEND_TIMEOUT_S) -> dict[str, object]:
    """Read the JSON statistics document of a running NAC's status port."""
    chunks: list[bytes] = []
    with anyio.fail_after(timeout):
        async with await anyio.connect_tcp(host, port) as stream:
            while True:
                try:
                    chunks.append(await stream.receive())
                except anyio.EndOfStream:
                    break
    document: dict[str, object] = json.loads(b"".join(chunks))
    return document
