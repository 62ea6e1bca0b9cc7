"""The runtime's callback path: length-prefixed frames over plain TCP as asyncio protocol callbacks.

:mod:`acqkit.netio` runs a task per connection: every frame read wakes that task (a cancel scope, reading
resumed and paused around each receive). A service that never waits in the middle of a request (it answers
what it reads at once, or at a timer) can instead be stepped from the event loop's own callbacks, with no task
per connection or frame: a read's bytes are cut into frames and ALL the whole frames of that read are handed to
the service's :class:`FrameSession` in one synchronous call; what it sends meanwhile leaves in one write at the
end of that call. On the same hops this costs about 0.6 of the task path (docs/benchmarks.md, the relay floor).

It applies on asyncio without TLS (:func:`callbacks_apply`); on trio, and under TLS, a service keeps its task
path. The two paths keep the same rules:

- frames are cut by :class:`wire.framing.LengthPrefixFramer` under a maximum frame length; a framing error, or
  a session that raises, closes that connection only (after the frames before the error were handed over and
  the answers sent), logged with the peer as :class:`acqkit.netio._Server` logs it;
- :meth:`FrameConnection.send` / :meth:`~FrameConnection.send_many` never block: frames sent in one loop turn
  leave in one write at its end (inside a read's callback: at the end of that callback); a frame over
  :data:`acqkit.directsocket.GATHER_MAX_BYTES` is written at once, after those gathered before it;
- backpressure: while the transport holds more than :data:`WRITE_HIGH_WATER_BYTES` unsent (asyncio's
  ``pause_writing``) the connection reads nothing, and a buffer not drained below
  :data:`WRITE_LOW_WATER_BYTES` within the send timeout aborts the connection (logged);
- an idle timeout: no frame for ``idle_timeout`` seconds closes the connection. One timer per connection,
  re-armed only when it fires early (each read just notes the time), never a timer per frame;
- :meth:`FrameConnection.close` writes what was gathered and closes (a peer that does not take it within the
  send timeout is aborted); :meth:`FrameConnection.abort` drops it at once;
- :meth:`FrameConnection.call_later` timers (a delayed answer) are cancelled when the connection goes.

:func:`serve_frames` is used like :func:`acqkit.netio.serve_tcp` (``await tg.start(...)``, the bound port, the
``max_connections`` cap with the same refusal log); it owns every connection it accepted, and when cancelled
stops listening and closes them, flushing, within :data:`acqkit.netio.CLOSE_TIMEOUT_S` (then aborts the rest).
Accepting is this module's own loop (one task per listening socket, every connection queued taken at each
wake-up), so accept errors are handled as :func:`acqkit.netio.serve_tcp` handles them, with the same log
lines: out of descriptors or buffers, it backs off ``ACCEPT_BACKOFF_MIN_S`` doubling to
``ACCEPT_BACKOFF_MAX_S`` while the queued clients wait (asyncio's own server would schedule a retry per
failed accept, up to its backlog each time, and libuv's accepts and drops them).
:func:`connect` gives a client the same connection object; the caller owns it and ends it with
:meth:`FrameConnection.aclose`.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import math
import socket
import ssl
from collections.abc import Callable
from typing import Any, Final, Protocol

import anyio
import anyio.abc
import sniffio

from acqkit.directsocket import GATHER_MAX_BYTES
from acqkit.netio import (
    ACCEPT_BACKOFF_MAX_S,
    ACCEPT_BACKOFF_MIN_S,
    CLOSE_TIMEOUT_S,
    DEFAULT_MAX_CONNECTIONS,
    RESOURCE_ERRNOS,
    ConnectionRefusals,
    connect_socket,
    is_ip_address,
)
from wire.errors import FramingError
from wire.framing import DEFAULT_MAX_FRAME_LEN, LengthPrefixFramer, frame

log = logging.getLogger("acqsim.net")

#: Unsent bytes a transport may hold before the connection stops reading (asyncio's ``pause_writing``) ...
WRITE_HIGH_WATER_BYTES: Final = 64 * 1024
#: ... and the level its buffer must drain to, within the send timeout, for reading to resume.
WRITE_LOW_WATER_BYTES: Final = 16 * 1024
#: A connection's send timeout unless its service says otherwise.
DEFAULT_SEND_TIMEOUT_S: Final = 5.0


def callbacks_apply(tls: ssl.SSLContext | None = None) -> bool:
    """Whether a service can take the callback path: on asyncio, without TLS. Elsewhere (trio, TLS) it uses
    its task path on :mod:`acqkit.netio`."""
    return tls is None and sniffio.current_async_library() == "asyncio"


class ConnectionIdle(TimeoutError):
    """Why the runtime closed a connection: no frame for its idle timeout."""


class SendTimedOut(TimeoutError):
    """Why the runtime aborted a connection: its peer took nothing sent within the send timeout."""


class FrameSession(Protocol):
    """What a service gives each connection: its rules, stepped from the connection's callbacks."""

    def frames_received(self, frames: list[bytes]) -> None:
        """The whole frames of one read, in order. Answer with the connection's ``send``/``send_many`` (they
        leave in one write when this returns). An exception closes this connection only (logged)."""

    def connection_closed(self, error: BaseException | None) -> None:
        """The connection is gone; its timers are already cancelled. ``error``: why, when the runtime closed it
        (a :class:`wire.errors.FramingError`, :class:`ConnectionIdle`, :class:`SendTimedOut`) or it broke (the
        transport's error); ``None`` when the peer or the session closed it."""


class AnswersAfterInput(Protocol):
    """A session that may owe answers when its peer ends its side of the connection (a half-close: the peer has
    sent everything and waits for the answers). Optional: a session without ``input_ended`` is closed at once."""

    def input_ended(self) -> bool:
        """The peer will send nothing more. ``True``: answers are still owed, so the connection stays open for
        writing until the session closes it (the idle timeout still bounds it); ``False``: close it now."""


#: Builds a connection's session; ``None`` refuses the connection (it is closed at once).
SessionFactory = Callable[["FrameConnection"], FrameSession | None]


class _Refused:
    """The session of a refused connection: it hears nothing."""

    def frames_received(self, frames: list[bytes]) -> None:
        return None

    def connection_closed(self, error: BaseException | None) -> None:
        return None


#: The session of a connection that has none: not opened yet, refused, or ended (it holds nothing, so one serves all).
_HEARS_NOTHING: Final = _Refused()


class _Connections:
    """The connections one server accepted: the cap, and its shutdown's wait for them all."""

    def __init__(self, name: str, max_connections: int) -> None:
        self.open: set[FrameConnection] = set()
        self.max_connections = max_connections
        self.refusals = ConnectionRefusals(name, max_connections)
        self.all_gone: asyncio.Event | None = None  # made by the shutdown that waits for it

    def forget(self, conn: FrameConnection) -> None:
        self.open.discard(conn)
        if not self.open and self.all_gone is not None:
            self.all_gone.set()

    async def close_all(self) -> None:
        """Close every connection, flushing, within ``CLOSE_TIMEOUT_S``; abort those still open then."""
        self.all_gone = asyncio.Event()
        if not self.open:
            return
        for conn in list(self.open):
            conn.close()
        with anyio.move_on_after(CLOSE_TIMEOUT_S):
            await self.all_gone.wait()
        for conn in list(self.open):
            log.info("%s: %s not closed within %g s: aborted", conn.name, conn.peer, CLOSE_TIMEOUT_S)
            conn.abort()
        with anyio.move_on_after(CLOSE_TIMEOUT_S):  # an aborted transport reports its loss in the next turn
            await self.all_gone.wait()


class FrameConnection(asyncio.Protocol):
    """One TCP connection read and written as length-prefixed frames through callbacks (see the module)."""

    def __init__(
        self,
        open_session: SessionFactory,
        *,
        name: str,
        max_frame_len: int = DEFAULT_MAX_FRAME_LEN,
        idle_timeout: float = math.inf,
        send_timeout: float = DEFAULT_SEND_TIMEOUT_S,
        server: _Connections | None = None,
    ) -> None:
        self.name = name
        self.max_frame_len = max_frame_len
        self.idle_timeout = idle_timeout
        self.send_timeout = send_timeout
        #: ``host:port`` of the other end (known once connected).
        self.peer = "?"
        self.framer = LengthPrefixFramer(max_frame_len)
        self._open_session = open_session
        self._session: FrameSession = _HEARS_NOTHING
        self._server = server
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._gathered: list[bytes] = []
        self._flush_due = False  # a flush is scheduled for the end of this loop turn
        self._in_read = False  # inside frames_received: the read's callback flushes when it returns
        self._closing = False
        self._closed = asyncio.Event()
        self._writes_paused = False
        self._reading_paused_by_session = False
        self._cause: BaseException | None = None  # why the runtime closed it, told to the session
        self._last_frame_at = self._loop.time()
        self._idle_timer: asyncio.TimerHandle | None = None
        self._send_timer: asyncio.TimerHandle | None = None
        self._timers: set[asyncio.TimerHandle] = set()

    # -- what a session uses ------------------------------------------------------------------------------------

    def send(self, payload: bytes) -> None:
        """Frame ``payload`` and queue it for this loop turn's write. Never blocks; on a closing connection the
        frame is dropped (the session hears ``connection_closed``). ``FramingError`` for an empty or oversized
        payload."""
        self._queue(frame(payload, max_frame_len=self.max_frame_len))

    def send_many(self, payloads: list[bytes]) -> None:
        """Frame each payload and queue them all, in order, for one write."""
        limit = self.max_frame_len
        self._queue(b"".join([frame(payload, max_frame_len=limit) for payload in payloads]))

    def call_later(self, delay: float, callback: Callable[..., object], *args: Any) -> asyncio.TimerHandle:
        """Run ``callback(*args)`` after ``delay`` seconds unless the connection has gone by then (its timers
        are cancelled when it closes). What the callback sends leaves at the end of that loop turn; an
        exception it raises closes this connection only (logged)."""
        handle: asyncio.TimerHandle | None = None

        def fire() -> None:
            assert handle is not None
            self._timers.discard(handle)
            try:
                callback(*args)
            except Exception:
                self._session_failed()

        handle = self._loop.call_later(delay, fire)
        self._timers.add(handle)
        return handle

    def pause_reading(self) -> None:
        """Read nothing more until :meth:`resume_reading` (a session's own flow control)."""
        self._reading_paused_by_session = True
        self._set_reading()

    def resume_reading(self) -> None:
        self._reading_paused_by_session = False
        self._set_reading()

    @property
    def writing_paused(self) -> bool:
        """The peer is not taking what is sent: the transport holds more than the high-water mark unsent (reading
        is paused meanwhile)."""
        return self._writes_paused

    @property
    def closing(self) -> bool:
        """The connection is closing or closed: sends are dropped."""
        return self._closing

    def close(self) -> None:
        """Write what was gathered, then close. A peer that does not take the rest within the send timeout is
        aborted."""
        if self._closing:
            return
        self._flush()
        self._closing = True
        self._cancel_idle_timer()
        transport = self._transport
        if transport is None:
            return
        transport.close()
        if transport.get_write_buffer_size() and self._send_timer is None:
            self._send_timer = self._loop.call_later(self.send_timeout, self._send_timed_out)

    def abort(self) -> None:
        """Close at once, dropping whatever is unsent."""
        self._closing = True
        self._gathered = []
        if self._transport is not None:
            self._transport.abort()

    async def wait_closed(self) -> None:
        """Return once the connection is gone."""
        await self._closed.wait()

    async def aclose(self) -> None:
        """:meth:`close`, and wait (shielded) up to ``CLOSE_TIMEOUT_S`` for it to finish, then :meth:`abort`."""
        self.close()
        with anyio.CancelScope(shield=True):
            with anyio.move_on_after(CLOSE_TIMEOUT_S):
                await self._closed.wait()
            if not self._closed.is_set():
                self.abort()

    # -- asyncio.Protocol ---------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        stream: asyncio.Transport = transport  # type: ignore[assignment]  # uvloop's transports are duck-typed
        self._transport = stream
        self.peer = _peer_of(stream)
        stream.set_write_buffer_limits(high=WRITE_HIGH_WATER_BYTES, low=WRITE_LOW_WATER_BYTES)
        server = self._server
        if server is not None:
            if len(server.open) >= server.max_connections:
                server.refusals.refuse(self.peer)
                self._server = None  # never counted as open
                self.close()
                return
            server.open.add(self)
        try:
            session = self._open_session(self)
        except Exception:
            self._session_failed()
            return
        if session is None:
            self.close()
            return
        self._session = session
        if self.idle_timeout != math.inf:
            self._idle_timer = self._loop.call_at(self._last_frame_at + self.idle_timeout, self._idle_check)

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        framer = self.framer
        framer.receive_data(data)
        frames: list[bytes] = []
        error: FramingError | None = None
        try:
            while isinstance(item := framer.next_frame(), bytes):
                frames.append(item)
        except FramingError as exc:
            error = exc  # the frames before it are still answered; then the connection closes
        if frames:
            self._last_frame_at = self._loop.time()
            self._in_read = True
            try:
                self._session.frames_received(frames)
            except Exception:
                self._session_failed()
                return
            finally:
                self._in_read = False
        if error is not None:
            log.warning("%s: closing %s: %s", self.name, self.peer, error)
            self._cause = error
            self.close()
        elif self._gathered:
            self._flush()

    def eof_received(self) -> bool:
        if self._closing:
            return False
        try:
            self.framer.receive_data(b"")
            self.framer.next_frame()  # a stream that ends inside a frame is a framing error
        except FramingError as exc:
            log.warning("%s: closing %s: %s", self.name, self.peer, exc)
            self._cause = exc
        else:
            input_ended = getattr(self._session, "input_ended", None)  # AnswersAfterInput
            if input_ended is not None and input_ended():
                return True  # asyncio keeps the transport open for writing; the session closes it
        self.close()  # the peer is done: answers already gathered go out first
        return False

    def pause_writing(self) -> None:
        self._writes_paused = True
        self._set_reading()
        if self._send_timer is None:
            self._send_timer = self._loop.call_later(self.send_timeout, self._send_timed_out)

    def resume_writing(self) -> None:
        self._writes_paused = False
        if self._send_timer is not None and not self._closing:
            self._send_timer.cancel()
            self._send_timer = None
        self._set_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self._gathered = []
        self._cancel_idle_timer()
        if self._send_timer is not None:
            self._send_timer.cancel()
            self._send_timer = None
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        if exc is not None:
            log.info("%s: %s went away", self.name, self.peer)
        try:
            self._session.connection_closed(self._cause or exc)
        except Exception:
            log.exception("%s: handler failed for %s; closing that connection only", self.name, self.peer)
        finally:
            # The transport and the session each point back at this connection: unlinked, a closed connection
            # is freed by refcounting, not left for the cyclic collector (one per transaction at a NAC whose
            # terminals connect for each one).
            self._transport = None
            self._session = _HEARS_NOTHING
            self._closed.set()
            if self._server is not None:
                self._server.forget(self)

    # -- inside -------------------------------------------------------------------------------------------------

    def _queue(self, data: bytes) -> None:
        if self._closing:
            return
        if len(data) > GATHER_MAX_BYTES:
            self._flush()  # what was sent before goes first
            assert self._transport is not None
            self._transport.write(data)
            return
        self._gathered.append(data)
        if not self._in_read and not self._flush_due:
            self._flush_due = True
            self._loop.call_soon(self._flush)  # after every callback already due in this turn

    def _flush(self) -> None:
        self._flush_due = False
        gathered = self._gathered
        if not gathered or self._closing or self._transport is None:
            return
        self._gathered = []
        self._transport.write(gathered[0] if len(gathered) == 1 else b"".join(gathered))

    def _set_reading(self) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if self._writes_paused or self._reading_paused_by_session:
            transport.pause_reading()
        else:
            transport.resume_reading()

    def _idle_check(self) -> None:
        due = self._last_frame_at + self.idle_timeout
        if self._loop.time() < due:  # a frame came since the timer was set: wait for the rest
            self._idle_timer = self._loop.call_at(due, self._idle_check)
            return
        self._idle_timer = None
        log.info("%s: %s idle too long, closing", self.name, self.peer)
        self._cause = ConnectionIdle(f"no frame for {self.idle_timeout:g} s")
        self.close()

    def _cancel_idle_timer(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    def _send_timed_out(self) -> None:
        self._send_timer = None
        log.info(
            "%s: %s did not take what was sent within %g s: aborting its connection",
            self.name,
            self.peer,
            self.send_timeout,
        )
        self._cause = SendTimedOut(f"nothing taken within {self.send_timeout:g} s")
        self.abort()

    def _session_failed(self) -> None:
        log.exception("%s: handler failed for %s; closing that connection only", self.name, self.peer)
        self.close()


def _peer_of(transport: asyncio.BaseTransport) -> str:
    address = transport.get_extra_info("peername")
    if isinstance(address, tuple):
        return f"{address[0]}:{address[1]}"
    return "?" if address is None else str(address)


async def serve_frames(
    host: str,
    port: int,
    open_session: SessionFactory,
    *,
    name: str,
    max_frame_len: int = DEFAULT_MAX_FRAME_LEN,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    idle_timeout: float = math.inf,
    send_timeout: float = DEFAULT_SEND_TIMEOUT_S,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Listen on ``host:port`` and give each connection a session from ``open_session`` until cancelled (asyncio
    only: see :func:`callbacks_apply`). Binds as :func:`acqkit.netio.serve_tcp` does (every address family the
    host resolves to, one port) and reports the bound port through ``task_status``."""
    if max_connections < 1:
        raise ValueError(f"{name}: max_connections must be at least 1, not {max_connections}")
    loop = asyncio.get_running_loop()
    # anyio binds (its address families, port 0 shared across them); the loop serves copies of its sockets.
    listener = await anyio.create_tcp_listener(local_host=host, local_port=port, reuse_port=False)
    bound = listener.extra(anyio.abc.SocketAttribute.local_port)
    sockets = [one.extra(anyio.abc.SocketAttribute.raw_socket).dup() for one in listener.listeners]
    await listener.aclose()
    connections = _Connections(name, max_connections)

    def new_connection() -> FrameConnection:
        return FrameConnection(
            open_session,
            name=name,
            max_frame_len=max_frame_len,
            idle_timeout=idle_timeout,
            send_timeout=send_timeout,
            server=connections,
        )

    try:
        async with anyio.create_task_group() as tg:
            for sock in sockets:
                tg.start_soon(_accept_forever, name, loop, sock, new_connection, connections)
            log.info(
                "%s listening on %s:%d (plain TCP, callbacks, at most %d connections)",
                name,
                host,
                bound,
                max_connections,
            )
            task_status.started(bound)
    finally:
        with anyio.CancelScope(shield=True):
            for sock in sockets:
                sock.close()
            await connections.close_all()


async def _accept_forever(
    name: str,
    loop: asyncio.AbstractEventLoop,
    sock: socket.socket,
    new_connection: Callable[[], FrameConnection],
    connections: _Connections,
) -> None:
    """Accept every connection queued on ``sock`` at each wake-up, backing off when the process is out of
    descriptors or buffers (the clients wait in the listen queue meanwhile)."""
    sock.setblocking(False)
    backoff = ACCEPT_BACKOFF_MIN_S
    while True:
        await anyio.wait_readable(sock)
        while True:
            try:
                client, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                if exc.errno in RESOURCE_ERRNOS:
                    log.warning(
                        "%s: accept failed (%s, %d open); accepting again in %.2f s",
                        name,
                        errno.errorcode.get(exc.errno or 0, exc.errno),
                        len(connections.open),
                        backoff,
                    )
                    await anyio.sleep(backoff)
                    backoff = min(backoff * 2, ACCEPT_BACKOFF_MAX_S)
                else:  # e.g. ECONNABORTED: that client gave up while queued; the listener is fine
                    log.info("%s: accept failed (%r); accepting the next one", name, exc)
                break
            backoff = ACCEPT_BACKOFF_MIN_S
            try:
                # asyncio sets TCP_NODELAY only on sockets whose proto is IPPROTO_TCP, and an accepted socket's is
                # 0: without this the answers of a plain asyncio loop (no uvloop) would wait for Nagle
                client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                await loop.connect_accepted_socket(new_connection, client)
            except OSError as exc:  # it went away before its transport was made
                client.close()
                log.info("%s: accepted connection lost at once (%r)", name, exc)


async def connect(
    host: str,
    port: int,
    open_session: Callable[[FrameConnection], FrameSession],
    *,
    timeout: float,
    name: str,
    max_frame_len: int = DEFAULT_MAX_FRAME_LEN,
    idle_timeout: float = math.inf,
    send_timeout: float = DEFAULT_SEND_TIMEOUT_S,
) -> FrameConnection:
    """A framed connection to ``host:port`` within ``timeout``, its frames handed to the session
    ``open_session`` builds (asyncio only). An IP address is connected to directly (no name resolution); the
    caller owns the connection and ends it with :meth:`FrameConnection.aclose`."""
    loop = asyncio.get_running_loop()

    def new_connection() -> FrameConnection:
        return FrameConnection(
            open_session, name=name, max_frame_len=max_frame_len, idle_timeout=idle_timeout, send_timeout=send_timeout
        )

    with anyio.fail_after(timeout):
        if is_ip_address(host):
            sock = await connect_socket(host, port)
            try:
                _, conn = await loop.create_connection(new_connection, sock=sock)
            except BaseException:
                sock.close()
                raise
        else:
            _, conn = await loop.create_connection(new_connection, host, port)
    return conn
