"""The anyio I/O shell shared by every acqsim service: length-prefixed frames over TCP (optionally TLS).

Sans-IO cores live in the service packages; this module only moves frames. ``serve_tcp`` runs a listener in
the caller's task group and reports the bound port through ``task_status`` (so tests bind port 0); each
connection runs ``handle(conn)`` in its own task and any error it raises is logged and ends that connection
only — anyio's ``Listener.serve`` would otherwise let it take the whole server down.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import math
import os
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import Final

import anyio
import anyio.abc
import anyio.lowlevel
from anyio.abc import TaskGroup

from acqkit.directsocket import DirectSocket
from acqkit.tls import TlsRefused, tls_accept, tls_connect
from wire.errors import FramingError
from wire.framing import DEFAULT_MAX_FRAME_LEN, END_OF_STREAM, NEED_DATA, LengthPrefixFramer, frame

log = logging.getLogger("acqsim.net")

READ_CHUNK: Final = 65536
#: How long a shutdown may spend closing a connection.
CLOSE_TIMEOUT_S: Final = 1.0


class _Batch:
    """Frames that senders left for the next write, and how that write went."""

    __slots__ = ("error", "parts", "written")

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.written = anyio.Event()
        self.error: str | None = None

    def fail(self, exc: BaseException) -> None:
        self.error = repr(exc) if not isinstance(exc, anyio.get_cancelled_exc_class()) else "the write was cancelled"


class FramedConnection:
    """A byte stream read and written as length-prefixed frames. On asyncio, a plain TCP stream is read and
    written through its transport (:mod:`acqkit.directsocket`: the same behaviour at about half the CPU)."""

    def __init__(
        self, stream: anyio.abc.ByteStream, *, max_frame_len: int = DEFAULT_MAX_FRAME_LEN, peer: str | None = None
    ) -> None:
        self.stream = stream
        self._direct = DirectSocket.of(stream)
        self.framer = LengthPrefixFramer(max_frame_len)
        self._peer = peer
        #: Who the peer proved to be: the subject common name of a verified TLS client certificate, or
        #: ``None`` on a plain TCP connection (the runtime's TLS support sets it).
        self.peer_identity: str | None = None
        self._writing = False
        self._next: _Batch | None = None  # frames left for the write in progress by other senders

    @property
    def peer(self) -> str:
        """``host:port`` of the other end (servers look it up as they accept, for their logs)."""
        if self._peer is None:
            self._peer = peer_name(self.stream)
        return self._peer

    async def receive(self, timeout: float = math.inf) -> bytes | None:
        """The next frame's payload; ``None`` when the peer closed cleanly. Raises ``TimeoutError``,
        :class:`FramingError` (stream out of step), or anyio's broken-resource errors."""
        item = self.framer.next_frame()
        if item is NEED_DATA:  # a cancel scope costs about as much as a small read: only when waiting
            if timeout == math.inf:
                return await self._read_frame()
            with anyio.fail_after(timeout):
                return await self._read_frame()
        if item is END_OF_STREAM:
            return None
        assert isinstance(item, bytes)
        return item

    async def _read_frame(self) -> bytes | None:
        while True:
            try:
                chunk = await (self._direct.receive() if self._direct is not None else self.stream.receive(READ_CHUNK))
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                chunk = b""
            self.framer.receive_data(chunk)
            item = self.framer.next_frame()
            if item is END_OF_STREAM:
                return None
            if item is not NEED_DATA:
                assert isinstance(item, bytes)
                return item

    async def send(self, payload: bytes) -> None:
        """Frame and write ``payload``. A send that finds another task's write in progress leaves its frame
        for that task, which writes every frame left meanwhile in one more write (one system call); so under
        load, answers to many requests share a write. Each sender returns only once the write carrying its
        frame is done, and meets that write's error (a broken-resource error) if it failed: no frame is lost
        without its sender knowing. On the direct path (asyncio, plain TCP) a small frame joins the one write at
        the end of the loop turn that carries every frame sent in that turn
        (:data:`acqkit.directsocket.GATHER_MAX_BYTES`): should the link close or break before then, that write
        is lost with the link, whose reader meets the end or the error, as does the next send."""
        await self._write(frame(payload, max_frame_len=self.framer.max_frame_len))

    async def send_many(self, payloads: list[bytes]) -> None:
        """Frame each payload and write them all at once (a server answering a batch of requests)."""
        await self._write(b"".join(frame(p, max_frame_len=self.framer.max_frame_len) for p in payloads))

    def buffered_frames(self) -> list[bytes]:
        """The whole frames already read and waiting, without any I/O (none if the next one is incomplete).

        Frames read before a framing error are returned first, to be served: the framer raises the error again
        at the next :meth:`receive` (it is sticky), so the connection still ends there."""
        frames = []
        try:
            while isinstance(item := self.framer.next_frame(), bytes):
                frames.append(item)
        except FramingError:
            if not frames:
                raise
        return frames

    async def _write(self, data: bytes) -> None:
        if self._writing:  # leave the frame for the write in progress, then wait for the write that carries it
            batch = self._next
            if batch is None:
                batch = self._next = _Batch()
            batch.parts.append(data)
            await batch.written.wait()
            if batch.error is not None:
                raise anyio.BrokenResourceError(f"write failed: {batch.error}") from None
            return
        self._writing = True
        try:
            await self._send(data)
            while (batch := self._next) is not None:
                self._next = None
                try:
                    await self._send(b"".join(batch.parts))
                except BaseException as exc:
                    batch.fail(exc)
                    raise
                finally:
                    batch.written.set()
        except BaseException as exc:
            if (left := self._next) is not None:  # never written: their senders must hear so
                self._next = None
                left.fail(exc)
                left.written.set()
            raise
        finally:
            self._writing = False

    async def _send(self, data: bytes) -> None:
        await (self._direct.send(data) if self._direct is not None else self.stream.send(data))

    async def aclose(self) -> None:
        if self._direct is not None:
            self._direct.flush()  # frames sent in this loop turn go out before the connection closes
        with anyio.move_on_after(CLOSE_TIMEOUT_S, shield=True):
            await self.stream.aclose()


async def acquire_slot(slots: anyio.Semaphore) -> None:
    """Take a slot of a per-connection in-flight limit: at once when one is free (anyio's ``acquire`` always
    yields to the event loop first, a turn per request on a busy link), else wait for one."""
    try:
        slots.acquire_nowait()
    except anyio.WouldBlock:
        await slots.acquire()


def peer_name(stream: anyio.abc.ByteStream) -> str:
    """``host:port`` of the other end, or ``?`` (never raises: it is called while handling errors)."""
    try:
        address = stream.extra(anyio.abc.SocketAttribute.remote_address)
    except (anyio.TypedAttributeLookupError, OSError, AttributeError):  # AttributeError: socket already gone
        return "?"
    if isinstance(address, tuple):
        return f"{address[0]}:{address[1]}"
    return str(address)


async def connect(
    host: str,
    port: int,
    *,
    timeout: float,
    max_frame_len: int = DEFAULT_MAX_FRAME_LEN,
    tls: ssl.SSLContext | None = None,
    server_name: str | None = None,
) -> FramedConnection:
    """A framed connection to ``host:port`` within ``timeout``. With ``tls`` (a client context from
    :mod:`acqkit.tls`) the server must then prove, within ``TLS_HANDSHAKE_TIMEOUT_S``, that its certificate
    names ``server_name`` (default: ``host``); :class:`~acqkit.tls.TlsRefused` (an ``OSError``-free error of
    its own) when it cannot."""
    with anyio.fail_after(timeout):
        stream: anyio.abc.ByteStream = (
            await _connect_address(host, port) if is_ip_address(host) else await anyio.connect_tcp(host, port)
        )
    if tls is not None:
        try:
            stream = await tls_connect(stream, tls, server_name or host)
        except BaseException:
            with anyio.move_on_after(CLOSE_TIMEOUT_S, shield=True):
                await stream.aclose()
            raise
    return FramedConnection(stream, max_frame_len=max_frame_len, peer=f"{host}:{port}")


def is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def _connect_address(host: str, port: int) -> anyio.abc.SocketStream:
    """Connect to an IP address without ``anyio.connect_tcp``'s name resolution and happy-eyeballs race (a
    task group per connection, about 0.1 ms of CPU): terminals open a connection per transaction. Unlike a
    stream from ``anyio.connect_tcp``, this one reads what arrives before its first ``receive`` into memory
    (every acqsim client reads its answers; a peer that is never read from is not a case here)."""
    sock = await connect_socket(host, port)
    try:
        return await anyio.abc.SocketStream.from_socket(sock)
    except BaseException:
        sock.close()
        raise


async def connect_socket(host: str, port: int) -> socket.socket:
    """A non-blocking TCP socket connected to the IP address ``host`` (no name resolution), with
    ``TCP_NODELAY`` as anyio's own TCP streams have it; the caller bounds the wait."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.connect((host, port))
        except BlockingIOError:
            await anyio.wait_writable(sock)
            error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if error:
                raise OSError(error, os.strerror(error)) from None
        return sock
    except BaseException:
        sock.close()
        raise


ConnectionHandler = Callable[[FramedConnection], Awaitable[None]]

#: Connections one service serves at once unless its config says otherwise (``max_connections``); a
#: connection beyond it is accepted and closed at once, so its client sees EOF instead of a silent queue.
DEFAULT_MAX_CONNECTIONS: Final = 1024
#: First pause after an accept that failed for want of a resource (file descriptors, buffers, memory) ...
ACCEPT_BACKOFF_MIN_S: Final = 0.01
#: ... doubled on each failure in a row, up to this.
ACCEPT_BACKOFF_MAX_S: Final = 1.0
#: At most one log line per this interval about refused connections (a flood must not flood the log).
REFUSAL_LOG_INTERVAL_S: Final = 10.0
#: accept() errors that mean "out of a resource now": wait for connections to close, then accept again.
RESOURCE_ERRNOS: Final = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def _accept_errno(exc: BaseException) -> int | None:
    """The errno behind an accept error (trio's backend wraps the ``OSError`` in a broken-resource error)."""
    for candidate in (exc, exc.__cause__):
        if isinstance(candidate, OSError):
            return candidate.errno
    return None


class ConnectionRefusals:
    """Counts connections refused at the cap and logs them at most once per ``REFUSAL_LOG_INTERVAL_S``."""

    def __init__(self, name: str, cap: int) -> None:
        self.name, self.cap = name, cap
        self.total = 0
        self._unlogged = 0
        self._last_log = -math.inf

    def refuse(self, peer: str) -> None:
        self.total += 1
        self._unlogged += 1
        now = anyio.current_time()
        if now - self._last_log >= REFUSAL_LOG_INTERVAL_S:
            log.warning(
                "%s: refused %d connection(s) (latest from %s): %d open, the cap (max_connections)",
                self.name,
                self._unlogged,
                peer,
                self.cap,
            )
            self._unlogged = 0
            self._last_log = now


async def serve_tcp(
    host: str,
    port: int,
    handle: ConnectionHandler,
    *,
    name: str,
    max_frame_len: int = DEFAULT_MAX_FRAME_LEN,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    tls: ssl.SSLContext | None = None,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Listen on ``host:port`` and run ``handle`` for each connection until cancelled.

    Every connection's handler runs in this server's task group, so cancelling the server ends them all
    (each connection is closed under ``CLOSE_TIMEOUT_S``). At most ``max_connections`` are served at once;
    an accept that fails for want of a resource backs off and accepts again instead of ending the server.
    With ``tls`` (a server context from :mod:`acqkit.tls`) each connection first completes a TLS handshake
    within ``TLS_HANDSHAKE_TIMEOUT_S``, and the verified client certificate's common name becomes
    ``conn.peer_identity``.
    """
    if max_connections < 1:
        raise ValueError(f"{name}: max_connections must be at least 1, not {max_connections}")
    listener = await anyio.create_tcp_listener(local_host=host, local_port=port, reuse_port=False)
    bound = listener.extra(anyio.abc.SocketAttribute.local_port)
    log.info(
        "%s listening on %s:%d (%s, at most %d connections)",
        name,
        host,
        bound,
        "mutual TLS" if tls is not None else "plain TCP",
        max_connections,
    )
    server = _Server(name, handle, max_frame_len=max_frame_len, max_connections=max_connections, tls=tls)
    async with listener, anyio.create_task_group() as tg:
        for one in listener.listeners:  # one per address family the host resolves to
            assert isinstance(one, anyio.abc.SocketListener)
            tg.start_soon(server.accept_forever, one, tg)
        task_status.started(bound)


class _Server:
    """One listening service's accept loops and connection count (see :func:`serve_tcp`)."""

    def __init__(
        self,
        name: str,
        handle: ConnectionHandler,
        *,
        max_frame_len: int,
        max_connections: int,
        tls: ssl.SSLContext | None,
    ) -> None:
        self.name = name
        self.handle = handle
        self.max_frame_len = max_frame_len
        self.max_connections = max_connections
        self.tls = tls
        self.open = 0
        self.refusals = ConnectionRefusals(name, max_connections)

    async def accept_forever(self, listener: anyio.abc.SocketListener, tg: TaskGroup) -> None:
        backoff = ACCEPT_BACKOFF_MIN_S
        while True:
            try:
                stream = await listener.accept()
            except anyio.ClosedResourceError:
                return
            except (OSError, anyio.BrokenResourceError) as exc:
                code = _accept_errno(exc)
                if code in RESOURCE_ERRNOS:
                    log.warning(
                        "%s: accept failed (%s, %d open); accepting again in %.2f s",
                        self.name,
                        errno.errorcode.get(code or 0, code),
                        self.open,
                        backoff,
                    )
                    await anyio.sleep(backoff)
                    backoff = min(backoff * 2, ACCEPT_BACKOFF_MAX_S)
                else:  # e.g. ECONNABORTED: that client gave up while queued; the listener is fine
                    log.info("%s: accept failed (%r); accepting the next one", self.name, exc.__cause__ or exc)
                    await anyio.lowlevel.checkpoint()
                continue
            backoff = ACCEPT_BACKOFF_MIN_S
            if self.open >= self.max_connections:
                self.refusals.refuse(peer_name(stream))
                await _close_now(stream)
                continue
            self.open += 1
            tg.start_soon(self.guarded, stream)

    async def guarded(self, stream: anyio.abc.ByteStream) -> None:
        peer = peer_name(stream)
        conn: FramedConnection | None = None
        try:
            identity = None
            if self.tls is not None:
                stream, identity = await tls_accept(stream, self.tls)
            conn = FramedConnection(stream, max_frame_len=self.max_frame_len, peer=peer)
            conn.peer_identity = identity
            await self.handle(conn)
        except TlsRefused as exc:
            log.log(logging.INFO if exc.before_hello else logging.WARNING, "%s: refused %s: %s", self.name, peer, exc)
        except FramingError as exc:
            log.warning("%s: closing %s: %s", self.name, peer, exc)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream):
            log.info("%s: %s went away", self.name, peer)
        except TimeoutError:
            log.info("%s: %s idle too long, closing", self.name, peer)
        except Exception:
            log.exception("%s: handler failed for %s; closing that connection only", self.name, peer)
        finally:
            self.open -= 1
            if conn is not None:
                await conn.aclose()  # what the handler sent in its last loop turn goes out first
            else:
                await _close_now(stream)


async def _close_now(stream: anyio.abc.ByteStream) -> None:
    with anyio.move_on_after(CLOSE_TIMEOUT_S, shield=True):
        await stream.aclose()


async def relay_frames(
    conn: FramedConnection,
    upstream: FramedConnection,
    *,
    idle_timeout: float,
    drop_answer: Callable[[], bool] | None = None,
) -> None:
    """Forward each frame from ``conn`` to ``upstream`` and its answer back, one at a time, until either side
    closes. ``drop_answer`` (asked per answer) lets a test relay lose an answer on purpose."""
    while (payload := await conn.receive(idle_timeout)) is not None:
        await upstream.send(payload)
        answer = await upstream.receive(idle_timeout)
        if answer is None or (drop_answer is not None and drop_answer()):
            return
        await conn.send(answer)
