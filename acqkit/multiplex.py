"""Many requests in flight on one framed connection, each answer matched to its request by a key.

Used by the ledger client (key: MTI class, 32, 41, 11, 13) and the HSM client (key: the 4-character message
header, which a payShield-style HSM echoes). Requests sent at about the same time share one write (see
:meth:`FramedConnection.send`) and their answers arrive in few reads, so a busy link costs far fewer system
calls than one connection per request.

Two links keep ONE copy of the matching rules (their base :class:`Link`: who waits under which key, delivery, failure):

- :class:`MultiplexedLink` (the task path, :mod:`acqkit.netio`; trio, TLS): there is no background task:
  whichever caller is waiting reads the next frame for everybody (one reader at a time) and hands each answer
  to its owner; a reader that leaves (answered, timed out, cancelled) wakes another waiter to take over.
- :class:`CallbackLink` (the callback path, :mod:`acqkit.frameprotocol`; asyncio without TLS): the link is the
  connection's :class:`~acqkit.frameprotocol.FrameSession`; every answer of a read is matched in the read's own
  callback and each exchange is woken once, when all its answers are in (no reader role, no receive per read).

:func:`open_link` picks the one that applies. Neither needs a task group of its own.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import ssl
from collections import deque
from collections.abc import Callable, Hashable
from typing import Final, Generic, Protocol, TypeVar

import anyio

from acqkit import frameprotocol
from acqkit.frameprotocol import FrameConnection, callbacks_apply
from acqkit.netio import FramedConnection, connect
from wire.errors import FramingError

log = logging.getLogger("acqsim.net")

#: A deadline this close is taken as passed when the deadline queue's timer fires: a loop's timers may fire up
#: to its clock's resolution early (uvloop's clock counts whole milliseconds), and one more turn for so little
#: would only spin.
DEADLINE_SLACK_S: Final = 0.001

Key = TypeVar("Key", bound=Hashable)
Answer = TypeVar("Answer")


class LinkLost(Exception):
    """The connection failed before the answer came (refused write, closed, bad frame); ``reason`` says how."""

    def __init__(self, peer: str, reason: str) -> None:
        super().__init__(f"{peer}: {reason}")
        self.reason = reason


class _Wake(Protocol):
    def set(self) -> None: ...


@dataclasses.dataclass(slots=True, eq=False)
class _Waiter(Generic[Answer]):
    answer: Answer | None = None
    error: str | None = None
    #: Told once when the answer or an error comes. Task path: set while the waiter sleeps for another reader
    #: (made only then: a lone exchange reads for itself); callback path: its exchange's :class:`_AllIn`.
    wake: _Wake | None = None

    def rouse(self) -> None:
        if self.wake is not None:
            self.wake.set()


class Link(Generic[Key, Answer]):
    """The matching rules both links share. ``decode(payload) -> (key, answer)`` reads an answer; it raises
    :class:`FramingError` for one that cannot be trusted, which ends the link (every waiter gets
    :class:`LinkLost`). ``dead`` says why the link ended (``None`` while it works)."""

    def __init__(self, decode: Callable[[bytes], tuple[Key, Answer]], *, what: str) -> None:
        self.what = what
        self._decode = decode
        self._pending: dict[Key, deque[_Waiter[Answer]]] = {}
        self.dead: str | None = None

    @property
    def peer(self) -> str:
        raise NotImplementedError

    async def exchange_many(self, requests: list[tuple[Key, bytes]]) -> list[Answer]:
        """Send the requests in one write (pipelined) and wait for all their answers, in request order;
        :class:`LinkLost` when the link ends first. The caller bounds the wait."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Close the connection (its waiters, if any, get :class:`LinkLost`)."""
        raise NotImplementedError

    def fail(self, reason: str) -> None:
        self.dead = reason
        for queue in self._pending.values():
            for waiter in queue:
                waiter.error = reason
                waiter.rouse()
        self._pending.clear()

    def _fail_lost(self, error: BaseException) -> None:
        """The connection broke, or read what cannot be trusted: why, as both paths say it."""
        self.fail(f"connection lost: {type(error).__name__}: {error}")

    def _fail_closed_by_peer(self) -> None:
        self.fail(f"connection closed by the {self.what}")

    def _register(self, requests: list[tuple[Key, bytes]]) -> list[tuple[Key, _Waiter[Answer]]]:
        waiters: list[tuple[Key, _Waiter[Answer]]] = []
        for key, _ in requests:
            waiter: _Waiter[Answer] = _Waiter()
            self._pending.setdefault(key, deque()).append(waiter)
            waiters.append((key, waiter))
        return waiters

    def _deliver(self, payload: bytes) -> None:
        key, answer = self._decode(payload)
        queue = self._pending.get(key)
        if not queue:
            log.info("dropping an answer from the %s nobody waits for (timed out earlier?)", self.what)
            return
        waiter = queue.popleft()
        waiter.answer = answer
        waiter.rouse()
        if not queue:
            del self._pending[key]

    def _remove(self, key: Key, waiter: _Waiter[Answer]) -> None:
        queue = self._pending.get(key)
        if queue is not None and waiter in queue:
            queue.remove(waiter)
            if not queue:
                del self._pending[key]


class MultiplexedLink(Link[Key, Answer]):
    """The task path's link on a :class:`~acqkit.netio.FramedConnection`: waiting callers take turns reading."""

    def __init__(self, conn: FramedConnection, decode: Callable[[bytes], tuple[Key, Answer]], *, what: str) -> None:
        super().__init__(decode, what=what)
        self.conn = conn
        self._reading = False

    @property
    def peer(self) -> str:
        return self.conn.peer

    async def aclose(self) -> None:
        await self.conn.aclose()

    async def exchange_many(self, requests: list[tuple[Key, bytes]]) -> list[Answer]:
        waiters = self._register(requests)
        try:
            try:
                await self.conn.send_many([payload for _, payload in requests])
            except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
                self.fail(f"send failed: {type(exc).__name__}")
            return [await self._wait(waiter) for _, waiter in waiters]
        finally:
            for key, waiter in waiters:
                self._remove(key, waiter)
            if not self._reading:
                self._hand_over()  # we may have been woken to read and are leaving (e.g. timed out)

    async def _wait(self, waiter: _Waiter[Answer]) -> Answer:
        while True:
            if waiter.answer is not None:
                return waiter.answer
            if waiter.error is not None or self.dead is not None:
                raise LinkLost(self.conn.peer, waiter.error or self.dead or "?")
            if self._reading:
                waiter.wake = anyio.Event()
                await waiter.wake.wait()  # our answer, an error, or our turn to read
                waiter.wake = None
                continue
            self._reading = True
            try:
                while waiter.answer is None and self.dead is None:
                    payload = await self.conn.receive()
                    if payload is None:
                        self._fail_closed_by_peer()
                    else:
                        self._deliver(payload)
                        # Every whole answer already read goes to its owner now: all wake in the same loop turn
                        # (their next writes leave together), not one after another as readers hand over.
                        for buffered in self.conn.buffered_frames():
                            self._deliver(buffered)
            except (FramingError, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
                self._fail_lost(exc)
            finally:
                self._reading = False
                self._hand_over()

    def _hand_over(self) -> None:
        """The reader is leaving: wake one sleeping waiter still without an answer to take over reading (one
        that is not sleeping yet finds nobody reading when it comes to wait, and reads itself)."""
        for queue in self._pending.values():
            for waiter in queue:
                if waiter.answer is None and waiter.wake is not None:
                    waiter.wake.set()
                    return


class _AllIn:
    """One exchange's wake-up on the callback path: resolves its future when each of its ``count`` waiters has
    been told (answered, or failed with the link), so the exchange resumes once, not once per answer."""

    __slots__ = ("future", "remaining")

    def __init__(self, future: asyncio.Future[None], count: int) -> None:
        self.future, self.remaining = future, count

    def set(self) -> None:
        self.remaining -= 1
        if self.remaining <= 0 and not self.future.done():  # done: the exchange was cancelled (its deadline)
            self.future.set_result(None)


class _Then(Generic[Key, Answer]):
    """One exchange of :meth:`CallbackLink.exchange_then`: calls its ``done`` once — when each of its waiters has
    been told (answered, or failed with the link), or when its ``deadline`` passes first (the link's deadline
    queue, or a timer of its own: see :meth:`CallbackLink.exchange_then`)."""

    __slots__ = ("deadline", "done", "link", "remaining", "timer", "waiters")

    def __init__(
        self,
        link: CallbackLink[Key, Answer],
        waiters: list[tuple[Key, _Waiter[Answer]]],
        done: Callable[[list[Answer] | TimeoutError | LinkLost], object],
        deadline: float,
    ) -> None:
        self.link, self.waiters, self.done, self.remaining = link, waiters, done, len(waiters)
        self.deadline = deadline
        self.timer: asyncio.TimerHandle | None = None

    @property
    def ended(self) -> bool:
        return self.done is _ended_already

    def set(self) -> None:
        self.remaining -= 1
        if self.remaining == 0:
            # In a later callback, as a task would resume: not inside the link's delivery, whose waiters change.
            self.link.loop.call_soon(self._end)

    def expire(self) -> None:
        if self.remaining > 0:
            self.remaining = -1  # a late answer finds nothing left to tell
            self._end()

    def _end(self) -> None:
        timer, self.timer = self.timer, None
        if timer is not None:
            timer.cancel()
        waiters, self.waiters = self.waiters, []
        result: list[Answer] | TimeoutError | LinkLost
        try:
            result = self.link._answers(waiters)
        except (TimeoutError, LinkLost) as exc:
            result = exc.with_traceback(None)  # its traceback holds this frame, which holds it: a cycle
        finally:
            for key, waiter in waiters:
                waiter.wake = None
                self.link._remove(key, waiter)
        # The exchange and its waiters, its timer and its caller's closures pointed at each other: unlinked above,
        # refcounting frees them now, not the cyclic collector later (its passes cost the front-end ~10 % of its
        # CPU, docs/benchmarks.md "session 13").
        done, self.done = self.done, _ended_already
        done(result)


def _ended_already(result: object) -> None:
    """The ``done`` of a :class:`_Then` that has ended: a second outcome has nobody to tell."""


def _time_out(future: asyncio.Future[None]) -> None:
    """An exchange's deadline passed: wake it (the waiters still without an answer or an error say it timed out;
    their answers may still come, and are dropped as nobody's). A result, not an exception: a task cancelled in
    the same loop turn would leave an exception nobody retrieves."""
    if not future.done():
        future.set_result(None)


class CallbackLink(Link[Key, Answer]):
    """The callback path's link: the session of a :class:`~acqkit.frameprotocol.FrameConnection` (asyncio,
    plain TCP). Answers are matched in ``frames_received``; a closed or broken connection, or an answer that
    does not decode (the connection is then closed), fails every waiter. Open it with :meth:`connect`."""

    def __init__(self, decode: Callable[[bytes], tuple[Key, Answer]], *, what: str) -> None:
        super().__init__(decode, what=what)
        self._conn: FrameConnection | None = None
        self._closed_here = False
        #: :meth:`exchange_then`'s exchanges in the order of their deadlines, and the one timer that ends those
        #: whose deadline has passed (see there).
        self._deadlines: deque[_Then[Key, Answer]] = deque()
        self._deadlines_timer: asyncio.TimerHandle | None = None
        #: The loop the connection runs on (an exchange's timer and wake-ups go to it: asking asyncio for the
        #: running loop costs a system call in CPython 3.11, several times a purchase).
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    async def connect(
        cls, host: str, port: int, decode: Callable[[bytes], tuple[Key, Answer]], *, what: str, timeout: float
    ) -> CallbackLink[Key, Answer]:
        link = cls(decode, what=what)
        await frameprotocol.connect(host, port, link._session_for, timeout=timeout, name=f"{what} link")
        return link

    def _session_for(self, conn: FrameConnection) -> CallbackLink[Key, Answer]:
        self._conn, self._loop = conn, asyncio.get_running_loop()
        return self

    @property
    def conn(self) -> FrameConnection:
        assert self._conn is not None, "connected by CallbackLink.connect"
        return self._conn

    @property
    def peer(self) -> str:
        return self.conn.peer

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "connected by CallbackLink.connect"
        return self._loop

    async def aclose(self) -> None:
        self._closed_here = True
        await self.conn.aclose()

    async def exchange_many(self, requests: list[tuple[Key, bytes]]) -> list[Answer]:
        return await self.exchange_until(requests, None)

    async def exchange_until(self, requests: list[tuple[Key, bytes]], deadline: float | None) -> list[Answer]:
        """:meth:`exchange_many`, bounded by ``deadline`` (the event loop's clock, ``loop.time()``; ``None``: the
        caller bounds the wait): :class:`TimeoutError` when it passes first. The deadline is a timer of the loop
        that fails the exchange's future, not a cancel scope: a peer client runs this three times a purchase."""
        self._refuse_if_dead()
        if not requests:
            return []
        waiters = self._register(requests)
        loop = self.loop
        future: asyncio.Future[None] = loop.create_future()
        all_in = _AllIn(future, len(waiters))
        for _, waiter in waiters:
            waiter.wake = all_in
        timer = loop.call_at(deadline, _time_out, future) if deadline is not None else None
        try:
            self.conn.send_many([payload for _, payload in requests])  # leaves with this loop turn's write
            await future
            return self._answers(waiters)
        finally:
            if timer is not None:
                timer.cancel()
            for key, waiter in waiters:
                self._remove(key, waiter)

    def exchange_then(
        self,
        requests: list[tuple[Key, bytes]],
        deadline: float,
        done: Callable[[list[Answer] | TimeoutError | LinkLost], object],
    ) -> None:
        """:meth:`exchange_until` for a caller stepped from the loop's callbacks: ``done`` is called once, from
        a callback of the loop, with the answers in order, or the :class:`TimeoutError` or :class:`LinkLost`
        :meth:`exchange_until` would raise. Raises :class:`LinkLost` at once for a link known to be dead."""
        self._refuse_if_dead()
        waiters = self._register(requests)
        then = _Then(self, waiters, done, deadline)
        for _, waiter in waiters:
            waiter.wake = then
        self._keep_deadline(then)
        self.conn.send_many([payload for _, payload in requests])  # leaves with this loop turn's write

    def _keep_deadline(self, then: _Then[Key, Answer]) -> None:
        """Bound ``then`` by its deadline. A client's exchanges mostly come with deadlines in the order they are
        made (now + one timeout), and most end long before it: those wait in one queue under one timer, which
        fires for the oldest deadline and is set again for the next, instead of a timer made and cancelled per
        exchange (three a purchase in the front-end). An exchange whose deadline comes before the newest one
        queued has a timer of its own."""
        queue = self._deadlines
        while queue and queue[0].ended:  # ended exchanges leave from the front, about as fast as they come
            queue.popleft()
        if queue and then.deadline < queue[-1].deadline:
            then.timer = self.loop.call_at(then.deadline, then.expire)
            return
        queue.append(then)
        if self._deadlines_timer is None:
            self._deadlines_timer = self.loop.call_at(then.deadline, self._deadlines_due)

    def _deadlines_due(self) -> None:
        """The queue's timer: expire every queued exchange whose deadline has passed; set again for the next."""
        self._deadlines_timer = None
        queue, now = self._deadlines, self.loop.time()
        while queue:
            then = queue[0]
            if not then.ended and then.deadline > now + DEADLINE_SLACK_S:
                self._deadlines_timer = self.loop.call_at(then.deadline, self._deadlines_due)
                return
            queue.popleft()
            then.expire()

    def _refuse_if_dead(self) -> None:
        """:class:`LinkLost` at once when the link is dead or its connection closing (which drops what is sent)."""
        if self.dead is None and self.conn.closing:
            self.fail("send failed: connection closed")
        if self.dead is not None:
            raise LinkLost(self.peer, self.dead)

    def _answers(self, waiters: list[tuple[Key, _Waiter[Answer]]]) -> list[Answer]:
        """The answers of an exchange's ``waiters`` in order, once each was told or its deadline passed; raises
        :class:`TimeoutError` (a waiter still without an answer or an error) or :class:`LinkLost`."""
        answers: list[Answer] = []
        for _, waiter in waiters:
            if waiter.answer is None:
                if waiter.error is None and self.dead is None:  # woken by the deadline's timer
                    raise TimeoutError(f"no answer from the {self.what} by the deadline")
                raise LinkLost(self.peer, waiter.error or self.dead or "?")
            answers.append(waiter.answer)
        return answers

    # -- FrameSession -----------------------------------------------------------------------------------------

    def frames_received(self, frames: list[bytes]) -> None:
        try:
            for payload in frames:
                self._deliver(payload)
        except FramingError as exc:
            self._fail_lost(exc)
            self.conn.close()

    def connection_closed(self, error: BaseException | None) -> None:
        if self.dead is not None:
            return
        if error is None and self._closed_here:  # as on the task path: only a waiter left behind hears of it
            if self._pending:
                self.fail("connection closed")
        elif error is None:
            self._fail_closed_by_peer()
        else:
            self._fail_lost(error)


async def open_link(
    host: str,
    port: int,
    decode: Callable[[bytes], tuple[Key, Answer]],
    *,
    what: str,
    timeout: float,
    tls: ssl.SSLContext | None = None,
    server_name: str | None = None,
) -> Link[Key, Answer]:
    """A multiplexed link to ``host:port`` within ``timeout``: the callback path where it applies (asyncio,
    plain TCP: :func:`~acqkit.frameprotocol.callbacks_apply`), else the task path (TLS: the peer must prove it
    is ``server_name``)."""
    if callbacks_apply(tls):
        return await CallbackLink.connect(host, port, decode, what=what, timeout=timeout)
    conn = await connect(host, port, timeout=timeout, tls=tls, server_name=server_name)
    return MultiplexedLink(conn, decode, what=what)


class TagsExhausted(Exception):
    """Every tag awaits an answer (or a late answer) on the current connection."""


class TagAllocator:
    """Numbered tags (``0 .. size-1``, handed out in turn) for requests whose answer echoes the tag — the HSM's
    4-character header. A tag is not handed out again while an answer to it may still arrive on the same
    connection: neither while its request is in flight nor after it timed out (the late answer would be
    paired with the next request under that tag). Those are freed when the connection is replaced
    (``generation`` changes), since no answer crosses connections. Sans-IO."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._cursor = 0
        self._busy: set[int] = set()
        self._stale: set[int] = set()  # timed out on generation ``_stale_generation``
        self._stale_generation = 0

    def take(self, generation: int) -> int:
        if self._stale and generation != self._stale_generation:
            self._stale.clear()
        for _ in range(self.size):
            tag = self._cursor
            self._cursor = (self._cursor + 1) % self.size
            if tag not in self._busy and tag not in self._stale:
                self._busy.add(tag)
                return tag
        raise TagsExhausted(f"all {self.size} tags await an answer")

    def answered(self, tag: int) -> None:
        self._busy.discard(tag)

    def abandoned(self, tag: int, generation: int) -> None:
        """The request's answer did not come in time; it may still come on connection ``generation``."""
        self._busy.discard(tag)
        if self._stale and generation != self._stale_generation:
            self._stale.clear()
        self._stale_generation = generation
        self._stale.add(tag)

    @property
    def in_use(self) -> int:
        return len(self._busy) + len(self._stale)


class PeerLink(Generic[Key, Answer]):
    """The multiplexed link to one peer: opened when first needed, and again after it failed.

    :meth:`exchange_many` sends once more on a fresh connection when the connection it used had been opened
    earlier and turned out dead (the peer restarted meanwhile) — only for requests that are safe to repeat,
    as HSM commands and ledger requests (the ledger answers a repeated key with its first answer) are.
    """

    #: Tries per exchange: a second one only when a reused connection turned out dead.
    ATTEMPTS: Final = 2

    def __init__(
        self,
        host: str,
        port: int,
        decode: Callable[[bytes], tuple[Key, Answer]],
        *,
        what: str,
        timeout: float,
        tls: ssl.SSLContext | None = None,
        server_name: str | None = None,
    ) -> None:
        """With ``tls``, the peer must prove it is ``server_name`` (a service name of :mod:`acqkit.tls`)."""
        self.host, self.port, self.what, self.timeout = host, port, what, timeout
        self.tls, self.server_name = tls, server_name
        self._decode = decode
        self._link: Link[Key, Answer] | None = None
        self._connecting = anyio.Lock()
        #: Counts the connections opened: an answer never crosses from one to the next.
        self.generation = 0

    @property
    def peer(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def up(self) -> bool:
        return self._link is not None and self._link.dead is None

    async def open(self) -> Link[Key, Answer]:
        """The open link, connecting first if need be; :class:`LinkLost` if the peer cannot be reached."""
        if self._link is not None and self.up:
            return self._link  # the common case, without the lock (whose acquire yields to the event loop)
        async with self._connecting:
            if self._link is not None and self.up:
                return self._link
            if self._link is not None:
                await self._link.aclose()
            try:
                self._link = await open_link(
                    self.host,
                    self.port,
                    self._decode,
                    what=self.what,
                    timeout=self.timeout,
                    tls=self.tls,
                    server_name=self.server_name,
                )
            except OSError as exc:  # a refused TLS handshake (TlsRefused) too
                raise LinkLost(self.peer, f"{type(exc).__name__}: {exc}") from None
            self.generation += 1
            return self._link

    def callback_link(self) -> CallbackLink[Key, Answer] | None:
        """The open link when it is up and on the callback path (its exchanges take a deadline of their own)."""
        link = self._link
        return link if isinstance(link, CallbackLink) and link.dead is None else None

    async def exchange_many(self, requests: list[tuple[Key, bytes]]) -> list[Answer]:
        """:meth:`Link.exchange_many` on the open link; the caller bounds the wait."""
        for attempt in range(self.ATTEMPTS):
            reused = self.up
            link = await self.open()
            try:
                return await link.exchange_many(requests)
            except LinkLost:
                if not reused or attempt + 1 == self.ATTEMPTS:
                    raise
                log.info("%s connection was dead; sending again on a fresh one", self.what)
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            link.fail("client closed")
            await link.aclose()
