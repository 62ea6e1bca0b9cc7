"""Exchanges on short connections (connect, send one frame, read its answer, close), stepped from the event
loop's callbacks: the load engine's way on asyncio (``acqkit.frameprotocol.callbacks_apply``).

Dial-up and GPRS terminals open a connection per transaction, and so does ``acqsim load`` without
``--keep-alive``. As a task each, a call paid for a task, its cancel scopes, anyio's socket wrapper and a
transport (about 0.55 ms of CPU a call in the load generator, docs/benchmarks.md); here a call is a
non-blocking socket watched by the loop (``add_writer`` until it is connected, ``add_reader`` until the
answer's frame is whole) and a few callbacks. On trio the engine keeps its task per call.

Each call ends exactly once: answered (the first whole frame; the connection is closed), or failed (refused,
broken, closed by the peer, a frame that does not cut, or past its deadline: :meth:`ShortCalls.expire`, which
the engine's watchdog calls). Nothing outlives :meth:`ShortCalls.close_all`.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Callable
from typing import Final, Generic, TypeVar

from wire.errors import FramingError
from wire.framing import LengthPrefixFramer, frame

#: Largest read of an answer at once.
READ_CHUNK: Final = 65536

Token = TypeVar("Token")


class _Call(Generic[Token]):
    __slots__ = ("deadline", "framer", "pending", "sock", "token")

    def __init__(self, sock: socket.socket, token: Token, pending: bytes, deadline: float) -> None:
        self.sock, self.token, self.pending, self.deadline = sock, token, pending, deadline
        self.framer = LengthPrefixFramer()


class ShortCalls(Generic[Token]):
    """The short calls in flight to one address. ``answered(payload, token, now)`` and ``failed(token, now)``
    are called from the loop's callbacks (``now``: the loop's clock, which is anyio's on asyncio)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        answered: Callable[[bytes, Token, float], None],
        failed: Callable[[Token, float], None],
        timeout: float,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._address = (host, port)
        self._family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._answered, self._failed, self._timeout = answered, failed, timeout
        #: Calls in flight, oldest first (all have the same timeout, so deadlines come in this order too).
        self._calls: dict[int, _Call[Token]] = {}

    def __len__(self) -> int:
        return len(self._calls)

    def start(self, payload: bytes, token: Token) -> None:
        """Connect and send ``payload`` framed; the outcome comes to ``answered`` or ``failed``."""
        now = self._loop.time()
        try:
            sock = socket.socket(self._family, socket.SOCK_STREAM)
        except OSError:  # out of descriptors: this call fails, the run goes on
            self._loop.call_soon(self._failed, token, now)
            return
        call = _Call(sock, token, frame(payload), now + self._timeout)
        self._calls[sock.fileno()] = call
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            code = sock.connect_ex(self._address)
            if code in (0, errno.EINPROGRESS):
                self._loop.add_writer(sock.fileno(), self._writable, call)
                return
        except OSError:
            pass
        self._end(call)
        self._loop.call_soon(self._failed, token, now)  # not inside the caller's own step

    def expire(self, now: float) -> None:
        """Fail the calls past their deadline (their connections are closed)."""
        while self._calls:
            call = next(iter(self._calls.values()))
            if call.deadline > now:
                return
            self._end(call)
            self._failed(call.token, now)

    def close_all(self) -> None:
        """Close every call still in flight; none is reported."""
        for call in list(self._calls.values()):
            self._end(call)

    def _writable(self, call: _Call[Token]) -> None:
        sock = call.sock
        try:
            sent = 0 if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) else sock.send(call.pending)
        except BlockingIOError:
            return  # no room after all: the loop says when there is
        except OSError:
            sent = 0
        if not sent:  # not connected (refused, unreachable) or broken
            self._fail(call)
            return
        call.pending = call.pending[sent:]
        if not call.pending:  # all of the request left (the usual case: a frame is far below the socket buffer)
            self._loop.remove_writer(sock.fileno())
            self._loop.add_reader(sock.fileno(), self._readable, call)

    def _readable(self, call: _Call[Token]) -> None:
        try:
            data = call.sock.recv(READ_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            self._fail(call)
            return
        if not data:  # closed by the peer before the answer was whole
            self._fail(call)
            return
        call.framer.receive_data(data)
        try:
            answer = call.framer.next_frame()
        except FramingError:
            self._fail(call)
            return
        if isinstance(answer, bytes):
            self._end(call)
            self._answered(answer, call.token, self._loop.time())

    def _fail(self, call: _Call[Token]) -> None:
        self._end(call)
        self._failed(call.token, self._loop.time())

    def _end(self, call: _Call[Token]) -> None:
        sock = call.sock
        fd = sock.fileno()
        if self._calls.get(fd) is call:
            del self._calls[fd]
        if fd >= 0:
            self._loop.remove_writer(fd)
            self._loop.remove_reader(fd)
        sock.close()
