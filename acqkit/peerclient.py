"""The one base of every client of a peer service (the HSM's, the ledger's): connect, deadline, errors.

A :class:`PeerClient` owns a :class:`~acqkit.multiplex.PeerLink` (one multiplexed connection, opened when
first needed and again after it failed, TLS when given a context) and does, in one place, what each client
would otherwise write again:

- :meth:`PeerClient.connect`: a client with its connection open within the client's timeout;
- :meth:`PeerClient.exchange`: requests sent together, every answer awaited under one deadline;
- error translation, once, at the boundary: a timeout becomes :class:`PeerTimeout`, a refused, lost or
  untrustworthy connection :class:`PeerUnavailable` — both carrying the peer's name, its address, what was
  asked and why it failed. A service's client raises its own subclasses of these (``LedgerTimeout``,
  ``HsmUnavailable``, …) by overriding :meth:`PeerClient.unavailable` and :meth:`PeerClient.timed_out`.

Exceptions::

    PeerError                 (peer, address, action, reason)
     ├── PeerUnavailable      refused, lost, closed, or an answer that cannot be trusted
     └── PeerTimeout          no answer within the deadline: the request may or may not have been acted on
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Awaitable, Callable, Hashable
from types import TracebackType
from typing import ClassVar, Final, Generic, Self, TypeVar

import anyio

from acqkit.multiplex import LinkLost, PeerLink
from acqkit.netio import connect

log = logging.getLogger("acqsim.net")

Key = TypeVar("Key", bound=Hashable)
Answer = TypeVar("Answer")
Client = TypeVar("Client")

#: How long a service started on its own keeps trying to reach a peer it needs before it gives up and exits
#: with EXIT_UNREACHABLE (``--peer-wait``): long enough for peers started at the same moment to come up.
PEER_RETRY_WINDOW_S: Final = 10.0
#: First pause between tries within the window, doubled after each failure up to ``RETRY_PAUSE_MAX_S``.
RETRY_PAUSE_MIN_S: Final = 0.05
RETRY_PAUSE_MAX_S: Final = 1.0
#: How long a target may take to accept one connection before a tool calls it unreachable.
CONNECT_PROBE_TIMEOUT_S: Final = 5.0


class PeerError(Exception):
    """A peer service did not answer. ``peer`` names it (``HSM``, ``ledger``), ``address`` is HOST:PORT,
    ``action`` what was asked (``connect``, a command), ``reason`` why it failed."""

    def __init__(self, peer: str, address: str, action: str, reason: str) -> None:
        super().__init__(f"{peer} at {address}: {action}: {reason}")
        self.peer, self.address, self.action, self.reason = peer, address, action, reason


class PeerUnavailable(PeerError):
    """Refused, lost or closed before the answer came, or the peer's stream could no longer be trusted."""


class PeerTimeout(PeerError):
    """No answer within the deadline: the request may or may not have been acted on."""


class PeerClient(Generic[Key, Answer]):
    """Subclasses set :attr:`PEER` (the name in messages and logs), :attr:`SERVICE_NAME` (the name the
    peer's TLS certificate must carry) and :attr:`DEFAULT_TIMEOUT_S`, and implement :meth:`decode_answer`."""

    PEER: ClassVar[str] = "peer"
    SERVICE_NAME: ClassVar[str] = "peer"
    DEFAULT_TIMEOUT_S: ClassVar[float] = 5.0

    def __init__(
        self, host: str, port: int, *, timeout: float | None = None, tls: ssl.SSLContext | None = None
    ) -> None:
        """With ``tls`` (a client context of :mod:`acqkit.tls`), the peer must prove it is ``SERVICE_NAME``."""
        self.host, self.port = host, port
        self.timeout = self.DEFAULT_TIMEOUT_S if timeout is None else timeout
        self._peer: PeerLink[Key, Answer] = PeerLink(
            host,
            port,
            self.decode_answer,
            what=self.PEER,
            timeout=self.timeout,
            tls=tls,
            server_name=self.SERVICE_NAME,
        )

    @classmethod
    async def connect(
        cls, host: str, port: int, *, timeout: float | None = None, tls: ssl.SSLContext | None = None
    ) -> Self:
        """A client with its connection open (the subclass's unavailable or timeout error if it cannot be)."""
        client = cls(host, port, timeout=timeout, tls=tls)
        await client.open()
        return client

    def decode_answer(self, payload: bytes) -> tuple[Key, Answer]:
        """``(key, answer)`` of one answer frame; :class:`~wire.errors.FramingError` for one that cannot be
        trusted, which ends the connection (every waiter gets the unavailable error)."""
        raise NotImplementedError

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def generation(self) -> int:
        """Counts the connections opened so far; an answer never crosses from one to the next."""
        return self._peer.generation

    async def open(self) -> None:
        """Open the connection now (it opens by itself on the first exchange otherwise)."""
        try:
            with anyio.fail_after(self.timeout):
                await self._peer.open()
        except TimeoutError:
            raise self.timed_out("connect") from None
        except LinkLost as exc:
            raise self.unavailable("connect", exc.reason) from None

    async def exchange(
        self, requests: list[tuple[Key, bytes]], *, action: str, timeout: float | None = None
    ) -> list[Answer]:
        """Send ``requests`` in one write and return their answers in order, all within ``timeout`` (default:
        the client's). A connection opened earlier that turned out dead is replaced and the requests sent once
        more (see :class:`~acqkit.multiplex.PeerLink`): only requests safe to repeat travel this way."""
        seconds = self.timeout if timeout is None else timeout
        link = self._peer.callback_link()
        if link is not None:
            # The callback path (asyncio: anyio's clock is the loop's): the deadline is a timer of the loop, not a
            # cancel scope, which costs several times as much and this runs once per peer request.
            deadline = link.loop.time() + seconds
            try:
                return await link.exchange_until(requests, deadline)
            except TimeoutError:
                raise self.timed_out(action) from None
            except LinkLost:  # a connection opened earlier turned out dead: below, once more on a fresh one
                log.info("%s connection was dead; sending again on a fresh one", self.PEER)
        else:
            deadline = anyio.current_time() + seconds
        # A bare cancel scope with a deadline, not ``fail_after``: the same bound at about half the cost (no
        # generator context manager, no nested scope).
        with anyio.CancelScope(deadline=deadline):
            try:
                return await self._peer.exchange_many(requests)
            except TimeoutError:  # the connect of a fresh link ran out of its own time
                raise self.timed_out(action) from None
            except LinkLost as exc:
                raise self.unavailable(action, exc.reason) from None
        raise self.timed_out(action)  # only reached when the deadline cancelled the exchange

    def exchange_then(
        self,
        requests: list[tuple[Key, bytes]],
        done: Callable[[list[Answer] | PeerError | None], object],
        *,
        action: str,
        timeout: float | None = None,
    ) -> bool:
        """:meth:`exchange` for a caller stepped from the loop's callbacks, where the link is up on the callback
        path: ``done`` gets the answers, or the error :meth:`exchange` raises for a missed deadline, or ``None``
        when the link was lost meanwhile — the caller then runs :meth:`exchange`, which sends once more on a fresh
        connection as it would have. ``False`` (``done`` never called): no such link; use :meth:`exchange`."""
        link = self._peer.callback_link()
        if link is None or not requests:
            return False
        seconds = self.timeout if timeout is None else timeout

        def ended(result: list[Answer] | TimeoutError | LinkLost) -> None:
            if isinstance(result, TimeoutError):
                done(self.timed_out(action))
            elif isinstance(result, LinkLost):
                log.info("%s connection was lost during an exchange; sending again on a fresh one", self.PEER)
                done(None)
            else:
                done(result)

        try:
            link.exchange_then(requests, link.loop.time() + seconds, ended)
        except LinkLost:
            return False
        return True

    def unavailable(self, action: str, reason: str) -> PeerError:
        """The error for a refused or lost connection (a subclass returns its own type)."""
        return PeerUnavailable(self.PEER, self.address, action, reason)

    def timed_out(self, action: str) -> PeerError:
        """The error for a missed deadline (a subclass returns its own type)."""
        return PeerTimeout(self.PEER, self.address, action, "no answer in time")

    async def aclose(self) -> None:
        await self._peer.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


async def connect_within(connect: Callable[[], Awaitable[Client]], window: float) -> Client:
    """``connect()`` until it succeeds or ``window`` seconds have passed, pausing between tries; then the
    last :class:`PeerError` (which names the peer and its address) is raised."""
    deadline = anyio.current_time() + window
    pause = RETRY_PAUSE_MIN_S
    while True:
        try:
            return await connect()
        except PeerError:
            if anyio.current_time() + pause >= deadline:
                raise
        await anyio.sleep(pause)
        pause = min(pause * 2, RETRY_PAUSE_MAX_S)


async def accepts_connection(host: str, port: int, *, timeout: float = CONNECT_PROBE_TIMEOUT_S) -> bool:
    """Whether anything accepts a TCP connection at ``host:port`` within ``timeout`` (closed again at once): a
    tool pointed at a host that never answered says "unreachable" (exit 3) instead of reporting each request
    as lost."""
    try:
        conn = await connect(host, port, timeout=timeout)
    except (OSError, TimeoutError):
        return False
    await conn.aclose()
    return True
