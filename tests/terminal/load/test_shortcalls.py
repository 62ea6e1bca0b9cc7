"""Short calls stepped from the loop's callbacks (asyncio), over real loopback TCP: each call ends exactly once —
answered with the first whole frame, or failed when refused, closed before the answer, sent a frame that does
not cut, or past its deadline; ``close_all`` ends the rest silently."""

from __future__ import annotations

import functools
import socket
from collections.abc import Awaitable, Callable

import anyio
import pytest

from acqkit.netio import FramedConnection, serve_tcp
from terminal.load.shortcalls import ShortCalls

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("anyio_backend", ["asyncio"])]


class Outcomes:
    def __init__(self) -> None:
        self.answered: list[tuple[bytes, str]] = []
        self.failed: list[str] = []
        self.changed = anyio.Event()

    def on_answer(self, payload: bytes, token: str, now: float) -> None:
        self.answered.append((payload, token))
        self.changed.set()

    def on_failure(self, token: str, now: float) -> None:
        self.failed.append(token)
        self.changed.set()

    async def wait(self, count: int) -> None:
        with anyio.fail_after(5):
            while len(self.answered) + len(self.failed) < count:
                self.changed = anyio.Event()
                await self.changed.wait()


async def _with_server(
    handler: Callable[[FramedConnection], Awaitable[None]], body: Callable[[int], Awaitable[None]]
) -> None:
    async with anyio.create_task_group() as tg:
        port = await tg.start(functools.partial(serve_tcp, "127.0.0.1", 0, handler, name="test"))
        await body(port)
        tg.cancel_scope.cancel()


async def _read_until_closed(closed: anyio.Event, conn: FramedConnection) -> None:
    """A peer that never answers: it reads until the caller closes the connection, then says so."""
    while await conn.receive() is not None:
        pass
    closed.set()


def _calls(port: int, outcomes: Outcomes, timeout: float = 5.0) -> ShortCalls[str]:
    return ShortCalls("127.0.0.1", port, answered=outcomes.on_answer, failed=outcomes.on_failure, timeout=timeout)


async def test_each_call_gets_its_own_answer_on_its_own_connection() -> None:
    async def answer(conn: FramedConnection) -> None:
        payload = await conn.receive()
        assert payload is not None
        await conn.send(b"answer to " + payload)

    async def body(port: int) -> None:
        outcomes = Outcomes()
        calls = _calls(port, outcomes)
        for name in ("a", "b", "c"):
            calls.start(name.encode(), name)
        await outcomes.wait(3)
        assert sorted(outcomes.answered) == [(b"answer to a", "a"), (b"answer to b", "b"), (b"answer to c", "c")]
        assert outcomes.failed == [] and len(calls) == 0

    await _with_server(answer, body)


async def test_a_refused_connection_fails_the_call() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    outcomes = Outcomes()
    calls = _calls(port, outcomes)
    calls.start(b"x", "refused")
    await outcomes.wait(1)
    assert outcomes.failed == ["refused"] and outcomes.answered == [] and len(calls) == 0


@pytest.mark.parametrize(
    "reply", [b"", b"\xff\xff" + b"x" * 10, b"\x00\x05ab"], ids=["closed", "does not cut", "half a frame"]
)
async def test_no_whole_answer_before_the_peer_closes_fails_the_call(reply: bytes) -> None:
    async def misbehave(conn: FramedConnection) -> None:
        await conn.receive()
        if reply:
            await conn.stream.send(reply)

    async def body(port: int) -> None:
        outcomes = Outcomes()
        calls = _calls(port, outcomes)
        calls.start(b"x", "bad")
        await outcomes.wait(1)
        assert outcomes.failed == ["bad"] and outcomes.answered == []

    await _with_server(misbehave, body)


async def test_a_call_past_its_deadline_fails_and_its_connection_is_closed() -> None:
    closed = anyio.Event()
    silent = functools.partial(_read_until_closed, closed)

    async def body(port: int) -> None:
        outcomes = Outcomes()
        calls = _calls(port, outcomes, timeout=60.0)
        calls.start(b"x", "late")
        calls.expire(anyio.current_time() + 1.0)  # not yet
        assert outcomes.failed == [] and len(calls) == 1
        calls.expire(anyio.current_time() + 61.0)
        assert outcomes.failed == ["late"] and len(calls) == 0
        with anyio.fail_after(5):
            await closed.wait()

    await _with_server(silent, body)


async def test_close_all_ends_the_calls_in_flight_without_reporting_them() -> None:
    closed = anyio.Event()
    silent = functools.partial(_read_until_closed, closed)

    async def body(port: int) -> None:
        outcomes = Outcomes()
        calls = _calls(port, outcomes)
        calls.start(b"x", "left")
        calls.close_all()
        assert len(calls) == 0
        with anyio.fail_after(5):
            await closed.wait()
        assert outcomes.failed == [] and outcomes.answered == []

    await _with_server(silent, body)
