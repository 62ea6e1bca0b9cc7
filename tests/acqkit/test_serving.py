"""serve_tcp over real loopback TCP: the connection cap, surviving EMFILE, and senders of lost frames."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

import anyio
import anyio.abc
import anyio.lowlevel
import pytest

from acqkit.netio import FramedConnection, connect, serve_tcp
from tests.fdlimit import one_descriptor_left

pytestmark = pytest.mark.anyio

HOST = "127.0.0.1"
STEP_TIMEOUT_S = 5.0


async def echo(conn: FramedConnection) -> None:
    while (payload := await conn.receive(STEP_TIMEOUT_S)) is not None:
        await conn.send(payload)


async def round_trip(conn: FramedConnection, payload: bytes) -> bytes | None:
    await conn.send(payload)
    return await conn.receive(STEP_TIMEOUT_S)


async def wait_until(condition: Callable[[], bool]) -> None:
    """Poll state that has no event of its own (a log line), under a deadline."""
    with anyio.fail_after(STEP_TIMEOUT_S):
        while not condition():  # noqa: ASYNC110 - the state itself is what we wait for
            await anyio.sleep(0.01)


async def test_connections_beyond_the_cap_see_eof_at_once_and_the_others_keep_working(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with anyio.create_task_group() as tg:
        port = await tg.start(functools.partial(serve_tcp, HOST, 0, echo, name="capped", max_connections=2))
        first = await connect(HOST, port, timeout=STEP_TIMEOUT_S)
        second = await connect(HOST, port, timeout=STEP_TIMEOUT_S)
        assert await round_trip(first, b"one") == b"one"
        assert await round_trip(second, b"two") == b"two"
        with caplog.at_level(logging.WARNING, logger="acqsim.net"):
            for _ in range(3):
                extra = await connect(HOST, port, timeout=STEP_TIMEOUT_S)
                with anyio.fail_after(STEP_TIMEOUT_S):  # closed at once, not left waiting
                    assert await extra.receive() is None
                await extra.aclose()
        refusals = [r for r in caplog.records if "refused" in r.getMessage()]
        assert len(refusals) == 1  # rate-limited: one line for the burst
        assert "max_connections" in refusals[0].getMessage()
        assert await round_trip(first, b"still one") == b"still one"
        assert await round_trip(second, b"still two") == b"still two"
        await first.aclose()
        await second.aclose()
        tg.cancel_scope.cancel()


async def test_a_freed_slot_is_served_again() -> None:
    async with anyio.create_task_group() as tg:
        port = await tg.start(functools.partial(serve_tcp, HOST, 0, echo, name="capped", max_connections=1))
        first = await connect(HOST, port, timeout=STEP_TIMEOUT_S)
        assert await round_trip(first, b"one") == b"one"
        await first.aclose()
        with anyio.fail_after(STEP_TIMEOUT_S):
            while True:  # the server notices the close a moment later; until then a newcomer is refused
                later = await connect(HOST, port, timeout=STEP_TIMEOUT_S)
                try:
                    if await round_trip(later, b"again") == b"again":
                        break
                except anyio.BrokenResourceError:
                    pass
                finally:
                    await later.aclose()
        tg.cancel_scope.cancel()


async def test_running_out_of_file_descriptors_backs_off_and_keeps_serving(caplog: pytest.LogCaptureFixture) -> None:
    async with anyio.create_task_group() as tg:
        port = await tg.start(functools.partial(serve_tcp, HOST, 0, echo, name="starved"))
        healthy = await connect(HOST, port, timeout=STEP_TIMEOUT_S)
        assert await round_trip(healthy, b"before") == b"before"
        with caplog.at_level(logging.WARNING, logger="acqsim.net"), one_descriptor_left():
            waiting = await connect(HOST, port, timeout=STEP_TIMEOUT_S)
            await wait_until(lambda: any("EMFILE" in r.getMessage() for r in caplog.records))
        assert await round_trip(waiting, b"accepted later") == b"accepted later"
        assert await round_trip(healthy, b"meanwhile") == b"meanwhile"
        await waiting.aclose()
        await healthy.aclose()
        tg.cancel_scope.cancel()


async def test_cancelling_the_server_ends_every_handler_and_closes_the_port() -> None:
    ended = 0

    async def hold(conn: FramedConnection) -> None:
        nonlocal ended
        try:
            await anyio.sleep_forever()
        finally:
            ended += 1

    async with anyio.create_task_group() as tg:
        port = await tg.start(functools.partial(serve_tcp, HOST, 0, hold, name="held"))
        clients = [await connect(HOST, port, timeout=STEP_TIMEOUT_S) for _ in range(3)]
        for client in clients:
            await client.send(b"hello")
        tg.cancel_scope.cancel()
    for client in clients:
        with anyio.fail_after(STEP_TIMEOUT_S):
            assert await client.receive() is None
        await client.aclose()
    with pytest.raises(OSError):
        await connect(HOST, port, timeout=STEP_TIMEOUT_S)


class GatedStream(anyio.abc.ByteStream):
    """A stream whose first write waits for ``gate`` and whose writes after ``fail_from`` fail."""

    def __init__(self, *, fail_from: int) -> None:
        self.gate = anyio.Event()
        self.writes: list[bytes] = []
        self.calls = 0
        self.fail_from = fail_from

    async def send(self, item: bytes) -> None:
        self.calls += 1
        if self.calls == 1:
            await self.gate.wait()
        if self.calls >= self.fail_from:
            raise anyio.BrokenResourceError("peer reset")
        self.writes.append(item)

    async def receive(self, max_bytes: int = 65536) -> bytes:
        raise anyio.EndOfStream

    async def send_eof(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


@pytest.mark.parametrize("fail_from", [1, 2], ids=["own-write-fails", "batch-write-fails"])
async def test_a_frame_left_for_a_failed_write_fails_its_sender(fail_from: int) -> None:
    stream = GatedStream(fail_from=fail_from)
    conn = FramedConnection(stream)
    outcomes: dict[str, str] = {}

    async def send(name: str) -> None:
        try:
            await conn.send(name.encode())
            outcomes[name] = "sent"
        except anyio.BrokenResourceError:
            outcomes[name] = "failed"

    async with anyio.create_task_group() as tg:
        tg.start_soon(send, "writer")
        await wait_until(lambda: stream.calls == 1)  # the writer's own write is in progress
        tg.start_soon(send, "queued-1")
        tg.start_soon(send, "queued-2")
        for _ in range(5):
            await anyio.lowlevel.checkpoint()
        assert not outcomes  # queued senders wait for the write that carries their frames
        stream.gate.set()
    assert outcomes["queued-1"] == outcomes["queued-2"] == "failed"
    assert outcomes["writer"] == "failed"
    assert stream.calls == fail_from  # one write per batch: the two queued frames went in one write


async def test_queued_senders_return_once_their_write_succeeds() -> None:
    stream = GatedStream(fail_from=99)
    conn = FramedConnection(stream)
    done: list[str] = []

    async def send(name: str) -> None:
        await conn.send(name.encode())
        done.append(name)

    async with anyio.create_task_group() as tg:
        tg.start_soon(send, "writer")
        await wait_until(lambda: stream.calls == 1)
        tg.start_soon(send, "a")
        tg.start_soon(send, "b")
        for _ in range(5):
            await anyio.lowlevel.checkpoint()
        assert done == []
        stream.gate.set()
    assert sorted(done) == ["a", "b", "writer"]
    assert len(stream.writes) == 2
