"""The callback path (acqkit.frameprotocol) over real TCP on loopback: frames cut at any byte boundary and handed
over a read at a time, one connection's errors closing only that one, idle and send timeouts, the connection cap,
shutdown, and the client side."""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import math
import socket
import ssl
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
import anyio.abc
import anyio.lowlevel
import pytest
from hypothesis import given
from hypothesis import strategies as st

from acqkit import netio
from acqkit.frameprotocol import (
    ConnectionIdle,
    FrameConnection,
    FrameSession,
    SendTimedOut,
    callbacks_apply,
    connect,
    serve_frames,
)
from tests.collectoroff import collector_off
from tests.fdlimit import one_descriptor_left
from wire.errors import FramingError
from wire.framing import LengthPrefixFramer, frame

pytestmark = pytest.mark.anyio
DEADLINE_S = 10.0


@pytest.fixture(params=["asyncio", "uvloop"])
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, bool]]:
    # The callback path is asyncio's (trio services keep the task path); services run it on uvloop.
    return ("asyncio", {"use_uvloop": request.param == "uvloop"})


class Echo:
    """Answers every frame with itself, and records how frames arrived."""

    def __init__(self, conn: FrameConnection) -> None:
        self.conn = conn
        self.reads: list[list[bytes]] = []
        self.read = asyncio.Event()  # set at each read
        self.closed = asyncio.Event()
        self.error: BaseException | None = None

    def frames_received(self, frames: list[bytes]) -> None:
        self.reads.append(frames)
        self.read.set()
        self.answer(frames)

    def answer(self, frames: list[bytes]) -> None:
        for payload in frames:
            if payload == b"boom":
                raise RuntimeError("the session failed on purpose")
        self.conn.send_many(frames)

    async def wait_for_frames(self, count: int) -> None:
        with anyio.fail_after(DEADLINE_S):
            while sum(len(read) for read in self.reads) < count:
                self.read.clear()
                await self.read.wait()

    def connection_closed(self, error: BaseException | None) -> None:
        self.error = error
        self.closed.set()


class Sessions:
    """Builds sessions of one kind and keeps them, for the test to look at."""

    def __init__(self, kind: Callable[[FrameConnection], Echo] = Echo) -> None:
        self.kind = kind
        self.made: list[Echo] = []

    def __call__(self, conn: FrameConnection) -> FrameSession:
        session = self.kind(conn)
        self.made.append(session)
        return session


@asynccontextmanager
async def running(
    sessions: Callable[[FrameConnection], FrameSession],
    *,
    idle_timeout: float = math.inf,
    send_timeout: float = 5.0,
    max_connections: int = 10,
) -> AsyncIterator[int]:
    serve = functools.partial(
        serve_frames,
        "127.0.0.1",
        0,
        sessions,
        name="test",
        idle_timeout=idle_timeout,
        send_timeout=send_timeout,
        max_connections=max_connections,
    )
    async with anyio.create_task_group() as tg:
        port = await tg.start(serve)
        yield port
        tg.cancel_scope.cancel()


async def read_frames(stream: anyio.abc.ByteStream, count: int) -> list[bytes]:
    framer, frames = LengthPrefixFramer(), list[bytes]()
    with anyio.fail_after(DEADLINE_S):
        while len(frames) < count:
            framer.receive_data(await stream.receive())
            while isinstance(item := framer.next_frame(), bytes):
                frames.append(item)
    return frames


async def test_an_accepted_connection_sends_without_waiting_for_nagle() -> None:
    sessions = Sessions()
    async with running(sessions) as port, await anyio.connect_tcp("127.0.0.1", port) as client:
        await client.send(frame(b"ping"))
        assert await read_frames(client, 1) == [b"ping"]
        [echo] = sessions.made
        transport = echo.conn._transport
        assert transport is not None
        accepted = transport.get_extra_info("socket")  # the server's side of this connection
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0  # on asyncio and on uvloop


async def test_all_frames_of_a_read_in_one_call_and_their_answers_in_one_write() -> None:
    sessions = Sessions()
    async with running(sessions) as port, await anyio.connect_tcp("127.0.0.1", port) as stream:
        payloads = [f"request {i}".encode() for i in range(5)]
        await stream.send(b"".join(frame(p) for p in payloads))
        answer = b""
        with anyio.fail_after(DEADLINE_S):
            while len(answer) < sum(len(frame(p)) for p in payloads):
                answer += await stream.receive()  # one write of 5 small frames arrives as one read on loopback
        assert answer == b"".join(frame(p) for p in payloads)
        assert sessions.made[0].reads == [payloads]


@given(
    payloads=st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=12),
    cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=10),
)
async def test_frames_cut_at_any_byte_boundary_come_back_whole_and_in_order(
    payloads: list[bytes], cuts: list[int]
) -> None:
    data = b"".join(frame(p) for p in payloads)
    bounds = sorted({0, len(data), *(cut % (len(data) + 1) for cut in cuts)})
    async with running(Sessions()) as port, await anyio.connect_tcp("127.0.0.1", port) as stream:
        for start, end in itertools.pairwise(bounds):
            await stream.send(data[start:end])
        assert await read_frames(stream, len(payloads)) == payloads


async def test_a_framing_error_closes_that_connection_only_after_answering_what_came_before(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sessions = Sessions()
    async with (
        running(sessions) as port,
        await anyio.connect_tcp("127.0.0.1", port) as bad,
        await anyio.connect_tcp("127.0.0.1", port) as good,
    ):
        await bad.send(frame(b"before") + b"\x00\x00rest")  # a zero length prefix: out of step
        assert await read_frames(bad, 1) == [b"before"]
        with anyio.fail_after(DEADLINE_S):
            with pytest.raises(anyio.EndOfStream):
                await bad.receive()
        await good.send(frame(b"still served"))
        assert await read_frames(good, 1) == [b"still served"]
    assert any("closing 127.0.0.1:" in r.getMessage() and "zero-length" in r.getMessage() for r in caplog.records)
    assert isinstance(sessions.made[0].error, FramingError)  # the session is told why


async def test_a_failing_session_closes_its_connection_only(caplog: pytest.LogCaptureFixture) -> None:
    async with (
        running(Sessions()) as port,
        await anyio.connect_tcp("127.0.0.1", port) as failing,
        await anyio.connect_tcp("127.0.0.1", port) as other,
    ):
        await failing.send(frame(b"boom"))
        with anyio.fail_after(DEADLINE_S):
            with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                await failing.receive()
        await other.send(frame(b"fine"))
        assert await read_frames(other, 1) == [b"fine"]
    failed = [r for r in caplog.records if "handler failed for" in r.getMessage()]
    assert failed and failed[0].levelno == logging.ERROR and failed[0].exc_info is not None


async def test_an_idle_connection_is_closed_and_a_busy_one_is_not(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "acqsim.net")
    idle_s = 0.2
    async with (
        running(sessions := Sessions(), idle_timeout=idle_s) as port,
        await anyio.connect_tcp("127.0.0.1", port) as idle,
        await anyio.connect_tcp("127.0.0.1", port) as busy,
    ):
        await idle.send(frame(b"once"))
        assert await read_frames(idle, 1) == [b"once"]
        started = anyio.current_time()
        while anyio.current_time() - started < 3 * idle_s:  # never idle for long
            await busy.send(frame(b"tick"))
            assert await read_frames(busy, 1) == [b"tick"]
            await anyio.sleep(idle_s / 4)  # pacing, not synchronisation
        with anyio.fail_after(DEADLINE_S), pytest.raises(anyio.EndOfStream):
            await idle.receive()
        await busy.send(frame(b"still here"))
        assert await read_frames(busy, 1) == [b"still here"]
    assert sum("idle too long, closing" in r.getMessage() for r in caplog.records) == 1
    assert isinstance(sessions.made[0].error, ConnectionIdle) and sessions.made[1].error is None


class Flood(Echo):
    """Answers the first frame with far more than a client's socket buffers hold."""

    FLOOD_FRAMES = 8000  # × 4000 bytes: about 32 MB, beyond any loopback socket buffers

    paused_after_flood = False

    def answer(self, frames: list[bytes]) -> None:
        self.conn.send_many([b"x" * 4000] * self.FLOOD_FRAMES)
        self.paused_after_flood = self.conn.writing_paused


async def test_a_client_that_does_not_read_is_not_read_and_is_aborted_at_the_send_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "acqsim.net")
    sessions = Sessions(Flood)
    async with running(sessions, send_timeout=0.3) as port, await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(frame(b"flood me"))
        with anyio.fail_after(DEADLINE_S):
            await stream.receive(1)  # the flood began: the server stopped reading in the same callback
        await stream.send(frame(b"not read while the answers wait"))
        with anyio.fail_after(DEADLINE_S):
            await sessions.made[0].closed.wait()
    assert sessions.made[0].reads == [[b"flood me"]]
    flood = sessions.made[0]
    assert isinstance(flood, Flood) and flood.paused_after_flood  # the session sees the peer is not taking them
    assert isinstance(sessions.made[0].error, SendTimedOut)
    assert any("did not take what was sent within 0.3 s" in r.getMessage() for r in caplog.records)


async def test_connections_beyond_the_cap_are_refused_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    async with running(Sessions(), max_connections=1) as port:
        async with await anyio.connect_tcp("127.0.0.1", port) as first:
            await first.send(frame(b"in"))
            assert await read_frames(first, 1) == [b"in"]
            async with await anyio.connect_tcp("127.0.0.1", port) as second:
                with anyio.fail_after(DEADLINE_S), pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                    await second.receive()
        async with await anyio.connect_tcp("127.0.0.1", port) as third:  # the first has gone: room again
            await third.send(frame(b"in again"))
            assert await read_frames(third, 1) == [b"in again"]
    assert any("refused 1 connection(s)" in r.getMessage() for r in caplog.records)


class Recorder(Echo):
    """Records what arrives and answers nothing."""

    def answer(self, frames: list[bytes]) -> None:
        return None


class Delayed(Echo):
    """Answers each frame after a second, from a connection timer."""

    def __init__(self, conn: FrameConnection) -> None:
        super().__init__(conn)
        self.timers: list[asyncio.TimerHandle] = []

    def answer(self, frames: list[bytes]) -> None:
        delay = 0.0 if frames[0] == b"now" else 60.0
        self.timers.append(self.conn.call_later(delay, self.conn.send_many, frames))


async def test_timers_answer_and_are_cancelled_when_the_server_stops() -> None:
    sessions = Sessions(Delayed)
    with anyio.fail_after(DEADLINE_S):
        async with running(sessions) as port, await anyio.connect_tcp("127.0.0.1", port) as stream:
            await stream.send(frame(b"now"))
            assert await read_frames(stream, 1) == [b"now"]
            await stream.send(frame(b"in a minute"))
            await sessions.made[0].wait_for_frames(2)
        # the server stopped: the connection closed at once, and its pending timer with it
    session = sessions.made[0]
    assert isinstance(session, Delayed)
    assert session.closed.is_set()
    assert session.timers[1].cancelled()


async def test_the_client_connect_gives_the_same_connection() -> None:
    async def echo(conn: netio.FramedConnection) -> None:
        while (payload := await conn.receive()) is not None:
            await conn.send(payload)

    sessions = Sessions(Recorder)
    async with anyio.create_task_group() as tg:
        port = await tg.start(functools.partial(netio.serve_tcp, "127.0.0.1", 0, echo, name="echo"))
        conn = await connect("127.0.0.1", port, sessions, timeout=DEADLINE_S, name="client")
        conn.send(b"ping")
        conn.send(b"pong")
        await sessions.made[0].wait_for_frames(2)
        assert [p for read in sessions.made[0].reads for p in read] == [b"ping", b"pong"]
        await conn.aclose()
        assert sessions.made[0].closed.is_set()
        tg.cancel_scope.cancel()


async def test_connect_fails_cleanly_when_nothing_listens() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with pytest.raises(OSError):
        await connect("127.0.0.1", port, Sessions(), timeout=DEADLINE_S, name="client")


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_the_callback_path_applies_on_asyncio_without_tls_only(anyio_backend: str) -> None:
    assert callbacks_apply() is (anyio_backend == "asyncio")
    assert callbacks_apply(tls=ssl.create_default_context()) is False


async def test_out_of_descriptors_accepting_backs_off_and_the_queued_client_is_served_later(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with running(Sessions()) as port, await anyio.connect_tcp("127.0.0.1", port) as served:
        await served.send(frame(b"before"))
        assert await read_frames(served, 1) == [b"before"]
        with one_descriptor_left(), caplog.at_level(logging.WARNING, logger="acqsim.net"):
            waiting = await anyio.connect_tcp("127.0.0.1", port)
            with anyio.fail_after(DEADLINE_S):
                while "accept failed (EMFILE" not in caplog.text:  # noqa: ASYNC110 - the log is the state
                    await anyio.sleep(0.01)
        async with waiting:
            await waiting.send(frame(b"accepted later"))
            assert await read_frames(waiting, 1) == [b"accepted later"]
        await served.send(frame(b"meanwhile"))
        assert await read_frames(served, 1) == [b"meanwhile"]


async def test_a_closed_connection_is_freed_by_refcounting_not_left_for_the_cyclic_collector() -> None:
    """The transport, the connection and its session point at each other while it is open; once it has ended
    they are unlinked, so a NAC whose terminals connect for each transaction leaves no garbage for the cyclic
    collector (ten objects a transaction before)."""
    made: list[weakref.ref[FrameConnection]] = []
    closed: list[asyncio.Event] = []  # the session's event only: the test holds nothing that holds the connection

    def open_session(conn: FrameConnection) -> FrameSession:
        made.append(weakref.ref(conn))
        echo = Echo(conn)
        closed.append(echo.closed)
        return echo

    with collector_off():
        async with running(open_session) as port:
            async with await anyio.connect_tcp("127.0.0.1", port) as client:
                await client.send(frame(b"ping"))
                assert await read_frames(client, 1) == [b"ping"]
            with anyio.fail_after(DEADLINE_S):
                await closed[0].wait()
                while made[0]() is not None:  # the loop lets go of the transport within a few turns
                    await anyio.lowlevel.checkpoint()
