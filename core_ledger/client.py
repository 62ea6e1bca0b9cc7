"""anyio client of the core ledger for the front-end: ``submit(LedgerRequest) -> LedgerAnswer``.

One TCP connection carries many requests at once: each answer is matched to its request by the host-link
match key (MTI class, 32, 41, 11, 13; see :func:`core_ledger.hostlink.match_key`). There is no background
task: whichever caller is waiting reads the next frame for everybody (one reader at a time) and hands each
answer to its owner, so the client needs no task group of its own.

Errors (both ``LedgerError``):

- :class:`LedgerUnavailable`: connect refused, or the connection was lost before the answer came. The
  next call opens a fresh connection (a restarted ledger is picked up again).
- :class:`LedgerTimeout`: no answer within the timeout. The ledger may or may not have posted: the caller
  sends a reversal.

An answer that does not decode ends the connection (the stream cannot be trusted): every caller waiting on it
gets ``LedgerUnavailable``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import deque
from types import TracebackType
from typing import Final, Self

import anyio

from acqsim.netio import FramedConnection, connect
from core_ledger.api import LedgerAnswer, LedgerRequest
from core_ledger.hostlink import answer_from_fields, match_key, request_fields
from wire.codec import decode_host, encode_host
from wire.errors import FramingError, MessageDecodeError

log = logging.getLogger("acqsim.ledger.client")

#: Default time for one request, connecting included.
LEDGER_TIMEOUT_S: Final = 5.0

#: Tries per request: a second one only when a reused connection turned out dead.
MAX_ATTEMPTS: Final = 2

MatchKey = tuple[str, str, str, str, str]


class LedgerError(Exception):
    """Base of the ledger client's errors."""


class LedgerUnavailable(LedgerError):
    """Could not reach the ledger (refused, connection lost)."""


class LedgerTimeout(LedgerError):
    """No answer in time: the request may or may not have been posted."""


@dataclasses.dataclass(slots=True, eq=False)
class _Waiter:
    answer: LedgerAnswer | None = None
    error: str | None = None
    wake: anyio.Event = dataclasses.field(default_factory=anyio.Event)

    def notify(self) -> None:
        self.wake.set()


class _Link:
    """One connection with the requests waiting on it."""

    def __init__(self, conn: FramedConnection) -> None:
        self.conn = conn
        self.pending: dict[MatchKey, deque[_Waiter]] = {}
        self.reading = False
        self.dead: str | None = None

    def hand_over(self) -> None:
        """The reader is leaving: wake one waiter still without an answer to take over reading."""
        for queue in self.pending.values():
            for waiter in queue:
                if waiter.answer is None:
                    waiter.notify()
                    return

    def add(self, key: MatchKey) -> _Waiter:
        waiter = _Waiter()
        self.pending.setdefault(key, deque()).append(waiter)
        return waiter

    def remove(self, key: MatchKey, waiter: _Waiter) -> None:
        queue = self.pending.get(key)
        if queue is not None and waiter in queue:
            queue.remove(waiter)
            if not queue:
                del self.pending[key]

    def fail(self, reason: str) -> None:
        self.dead = reason
        for queue in self.pending.values():
            for waiter in queue:
                waiter.error = reason
                waiter.notify()
        self.pending.clear()

    def deliver(self, payload: bytes) -> None:
        try:
            fields = decode_host(payload)
            answer = answer_from_fields(fields)
        except MessageDecodeError as exc:
            raise FramingError(f"undecodable answer from the ledger: {exc}", kind="undecodable") from None
        key = _answer_key(fields)
        queue = self.pending.get(key)
        if not queue:
            log.info("dropping a ledger answer nobody waits for (timed out earlier?)")
            return
        waiter = queue.popleft()
        waiter.answer = answer
        waiter.notify()
        if not queue:
            del self.pending[key]


def _request_key(fields: dict[str, str]) -> MatchKey:
    return (fields["t"][:2], *match_key(fields))


def _answer_key(fields: dict[str, str]) -> MatchKey:
    return (fields.get("t", "")[:2], *match_key(fields))


class LedgerClient:
    def __init__(self, host: str, port: int, *, timeout: float = LEDGER_TIMEOUT_S) -> None:
        self.host, self.port = host, port
        self.timeout = timeout
        self._link: _Link | None = None
        self._connecting = anyio.Lock()

    @classmethod
    async def connect(cls, host: str, port: int, *, timeout: float = LEDGER_TIMEOUT_S) -> LedgerClient:
        """A client with its connection open (raises :class:`LedgerUnavailable` if the ledger is down)."""
        client = cls(host, port, timeout=timeout)
        try:
            with anyio.fail_after(timeout):
                await client._open()
        except TimeoutError:
            raise LedgerUnavailable(f"{host}:{port}: connect timed out") from None
        return client

    async def _open(self) -> _Link:
        async with self._connecting:
            if self._link is not None and self._link.dead is None:
                return self._link
            if self._link is not None:
                await self._link.conn.aclose()
            try:
                conn = await connect(self.host, self.port, timeout=self.timeout)
            except OSError as exc:
                raise LedgerUnavailable(f"{self.host}:{self.port}: {type(exc).__name__}") from None
            self._link = _Link(conn)
            return self._link

    async def submit(self, request: LedgerRequest, *, timeout: float | None = None) -> LedgerAnswer:
        """Send ``request`` and wait for its answer (``timeout`` defaults to the client's).

        If a connection opened earlier turns out to be dead, the request is sent once more on a fresh one:
        that is safe because the ledger answers a repeated key with its first answer and never posts twice.
        """
        fields = request_fields(request)
        payload = encode_host(fields)
        key = _request_key(fields)
        try:
            with anyio.fail_after(self.timeout if timeout is None else timeout):
                for attempt in range(MAX_ATTEMPTS):
                    reused = self._link is not None and self._link.dead is None
                    link = await self._open()
                    try:
                        return await self._exchange(link, key, payload)
                    except LedgerUnavailable:
                        if not reused or attempt + 1 == MAX_ATTEMPTS:
                            raise
                        log.info("ledger connection was dead; sending again on a fresh one")
                raise AssertionError("unreachable")
        except TimeoutError:
            raise LedgerTimeout(f"no answer from the ledger at {self.host}:{self.port} in time") from None

    async def _exchange(self, link: _Link, key: MatchKey, payload: bytes) -> LedgerAnswer:
        waiter = link.add(key)
        try:
            try:
                await link.conn.send(payload)
            except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
                link.fail(f"send failed: {type(exc).__name__}")
            return await self._wait(link, waiter)
        finally:
            link.remove(key, waiter)
            if not link.reading:
                link.hand_over()  # we may have been woken to read and are leaving (e.g. timed out)

    async def _wait(self, link: _Link, waiter: _Waiter) -> LedgerAnswer:
        while True:
            if waiter.answer is not None:
                return waiter.answer
            if waiter.error is not None or link.dead is not None:
                raise LedgerUnavailable(f"{self.host}:{self.port}: {waiter.error or link.dead}")
            if link.reading:
                await waiter.wake.wait()  # our answer, an error, or our turn to read
                waiter.wake = anyio.Event()
                continue
            link.reading = True
            try:
                while waiter.answer is None and link.dead is None:
                    payload = await link.conn.receive()
                    if payload is None:
                        link.fail("connection closed by the ledger")
                    else:
                        link.deliver(payload)
            except (FramingError, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
                link.fail(f"connection lost: {type(exc).__name__}")
            finally:
                link.reading = False
                link.hand_over()

    async def aclose(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            link.fail("client closed")
            await link.conn.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
