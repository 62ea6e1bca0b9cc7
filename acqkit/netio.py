"""The anyio I/O shell shared by every acqsim service: length-prefixed frames over TCP.

Sans-IO cores live in the service packages; this module only moves frames. ``serve_tcp`` runs a listener in
the caller's task group and reports the bound port through ``task_status`` (so tests bind port 0); each
connection runs ``handle(conn)`` in its own task and any error it raises is logged and ends that connection
only — anyio's ``Listener.serve`` would otherwise let it take the whole server down.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import math
import os
import socket
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final

import anyio
import anyio.abc

from wire.errors import FramingError
from wire.framing import DEFAULT_MAX_FRAME_LEN, END_OF_STREAM, NEED_DATA, LengthPrefixFramer, frame

log = logging.getLogger("acqsim.net")

READ_CHUNK: Final = 65536
#: Bytes that senders may leave for the write in progress before they too wait for the peer to read.
MAX_QUEUED_BYTES: Final = 1 << 20
#: How long a shutdown may spend closing a connection.
CLOSE_TIMEOUT_S: Final = 1.0


class FramedConnection:
    """A byte stream read and written as length-prefixed frames."""

    def __init__(
        self, stream: anyio.abc.ByteStream, *, max_frame_len: int = DEFAULT_MAX_FRAME_LEN, peer: str | None = None
    ) -> None:
        self.stream = stream
        self.framer = LengthPrefixFramer(max_frame_len)
        self._peer = peer
        #: Who the peer proved to be: the subject common name of a verified TLS client certificate, or
        #: ``None`` on a plain TCP connection (the runtime's TLS support sets it).
        self.peer_identity: str | None = None
        self._writing = False
        self._queued: list[bytes] = []
        self._queued_bytes = 0
        self._drained: anyio.Event | None = None

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
                chunk = await self.stream.receive(READ_CHUNK)
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
        for that task, which writes every frame left meanwhile in one more write (one system call) before it
        returns; so under load, answers to many requests share a write. The writing task meets any error (a
        peer that is gone shows in every task's next read). Frames left for a write wait, as a blocked write
        would, once ``MAX_QUEUED_BYTES`` are queued."""
        await self._write(frame(payload, max_frame_len=self.framer.max_frame_len))

    async def send_many(self, payloads: list[bytes]) -> None:
        """Frame each payload and write them all at once (a server answering a batch of requests)."""
        await self._write(b"".join(frame(p, max_frame_len=self.framer.max_frame_len) for p in payloads))

    def buffered_frames(self) -> list[bytes]:
        """The whole frames already read and waiting, without any I/O (none if the next one is incomplete)."""
        frames = []
        while isinstance(item := self.framer.next_frame(), bytes):
            frames.append(item)
        return frames

    async def _write(self, data: bytes) -> None:
        if self._writing:
            self._queued.append(data)
            self._queued_bytes += len(data)
            if self._queued_bytes > MAX_QUEUED_BYTES:  # the peer is not reading: wait as a blocked write would
                if self._drained is None:
                    self._drained = anyio.Event()
                await self._drained.wait()
            return
        self._writing = True
        try:
            await self.stream.send(data)
            while self._queued:
                batch = b"".join(self._queued)
                self._queued.clear()
                self._queued_bytes = 0
                self._release_waiters()
                await self.stream.send(batch)
        except BaseException:
            self._queued.clear()  # the stream failed or the write was cancelled: what was left is lost
            self._queued_bytes = 0
            raise
        finally:
            self._writing = False
            self._release_waiters()

    def _release_waiters(self) -> None:
        if self._drained is not None:
            self._drained.set()
            self._drained = None

    async def aclose(self) -> None:
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
    host: str, port: int, *, timeout: float, max_frame_len: int = DEFAULT_MAX_FRAME_LEN
) -> FramedConnection:
    with anyio.fail_after(timeout):
        stream = await _connect_address(host, port) if _is_ip_address(host) else await anyio.connect_tcp(host, port)
    return FramedConnection(stream, max_frame_len=max_frame_len, peer=f"{host}:{port}")


def _is_ip_address(host: str) -> bool:
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
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as anyio's own TCP streams
        try:
            sock.connect((host, port))
        except BlockingIOError:
            await anyio.wait_writable(sock)
            error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if error:
                raise OSError(error, os.strerror(error)) from None
        return await anyio.abc.SocketStream.from_socket(sock)
    except BaseException:
        sock.close()
        raise


ConnectionHandler = Callable[[FramedConnection], Awaitable[None]]

#: Connections a service holds open at once unless configured otherwise; one more is closed as it arrives.
DEFAULT_MAX_CONNECTIONS: Final = 1024
#: After a failed accept (no file descriptor left, say) the listener waits, doubling from the least to the most.
ACCEPT_BACKOFF_MIN_S: Final = 0.05
ACCEPT_BACKOFF_MAX_S: Final = 2.0
#: Refusals (over the cap) and accept failures are logged at most once per this many seconds, with a count.
REFUSAL_LOG_EVERY_S: Final = 10.0


class ConnectionGate:
    """How many connections a service holds, against its cap; refusals are counted and logged sparingly (a
    flood of connections must not become a flood of log lines)."""

    def __init__(self, name: str, max_connections: int = DEFAULT_MAX_CONNECTIONS) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self.name = name
        self.max_connections = max_connections
        self.open = 0
        self.refused = 0
        self._unlogged = 0
        self._logged_at = -math.inf

    def admit(self, peer: str) -> bool:
        """Take a place for a new connection, or count it refused (and log, at most every interval)."""
        if self.open < self.max_connections:
            self.open += 1
            return True
        self.refused += 1
        self._unlogged += 1
        now = anyio.current_time()
        if now - self._logged_at >= REFUSAL_LOG_EVERY_S:
            log.warning(
                "%s: refused %d connection(s) (latest from %s): %d open, the cap (max_connections)",
                self.name,
                self._unlogged,
                peer,
                self.max_connections,
            )
            self._unlogged, self._logged_at = 0, now
        return False

    def release(self) -> None:
        self.open -= 1


async def accept_forever(
    listener: anyio.abc.Listener[anyio.abc.SocketStream],
    handler: Callable[[anyio.abc.SocketStream], Coroutine[Any, Any, None]],
    tg: anyio.abc.TaskGroup,
    *,
    name: str,
) -> None:
    """Accept connections and run ``handler`` for each in ``tg``, until cancelled. Unlike anyio's
    ``Listener.serve``, a failed accept (EMFILE, ENFILE, ENOBUFS, ENOMEM …) does not end the listener: it backs
    off, doubling from ``ACCEPT_BACKOFF_MIN_S`` to ``ACCEPT_BACKOFF_MAX_S``, and accepts again."""
    if not isinstance(listener, anyio.abc.SocketListener):
        await listener.serve(handler, tg)  # not a TCP socket listener: no accept() to guard
        return
    backoff = 0.0
    logged_at = -math.inf
    while True:
        try:
            stream = await listener.accept()
        except (OSError, anyio.BrokenResourceError) as exc:  # trio's backend reports EMFILE as broken
            backoff = min(max(backoff * 2, ACCEPT_BACKOFF_MIN_S), ACCEPT_BACKOFF_MAX_S)
            if anyio.current_time() - logged_at >= REFUSAL_LOG_EVERY_S:
                logged_at = anyio.current_time()
                log.warning("%s: accept failed (%r); backing off %.2f s", name, exc.__cause__ or exc, backoff)
            await anyio.sleep(backoff)
            continue
        backoff = 0.0
        tg.start_soon(handler, stream)


async def serve_tcp(
    host: str,
    port: int,
    handle: ConnectionHandler,
    *,
    name: str,
    max_frame_len: int = DEFAULT_MAX_FRAME_LEN,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    gate: ConnectionGate | None = None,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Listen on ``host:port`` and run ``handle`` for each connection until cancelled; ``task_status`` gets the
    bound port (bind port 0 for any). At most ``max_connections`` are served at once (or ``gate``'s cap, when
    the caller wants to watch the gate); one more is closed at once and counted."""
    gate = gate or ConnectionGate(name, max_connections)
    listener = await anyio.create_tcp_listener(local_host=host, local_port=port, reuse_port=False)
    bound = listener.extra(anyio.abc.SocketAttribute.local_port)
    log.info("%s listening on %s:%d (at most %d connections)", name, host, bound, gate.max_connections)

    async def guarded(stream: anyio.abc.SocketStream) -> None:
        conn = FramedConnection(stream, max_frame_len=max_frame_len, peer=peer_name(stream))
        if not gate.admit(conn.peer):
            await conn.aclose()
            return
        try:
            await handle(conn)
        except FramingError as exc:
            log.warning("%s: closing %s: %s", name, conn.peer, exc)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream):
            log.info("%s: %s went away", name, conn.peer)
        except TimeoutError:
            log.info("%s: %s idle too long, closing", name, conn.peer)
        except Exception:
            log.exception("%s: handler failed for %s; closing that connection only", name, conn.peer)
        finally:
            gate.release()
            await conn.aclose()

    task_status.started(bound)
    async with listener, anyio.create_task_group() as tg:
        for one in listener.listeners:  # one per address family the host resolves to
            tg.start_soon(functools.partial(accept_forever, one, guarded, tg, name=name))


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
