"""The NAC over real loopback TCP: many terminals, an echo front-end, failover, bad input."""

from __future__ import annotations

import functools
import random
from collections.abc import Callable

import anyio
import anyio.abc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acqsim.netio import FramedConnection, connect, serve_tcp
from nac.server import Nac, NacLimits, serve
from wire.framing import frame
from wire.tpdu import Tpdu

pytestmark = pytest.mark.anyio
HEADER = b"\x60\x31\x00\x00\x00\x00"


async def echo_front_end(conn: FramedConnection) -> None:
    """Answers each frame with the TPDU swapped and the body echoed plus a marker (several in flight)."""
    while (payload := await conn.receive()) is not None:
        tpdu = Tpdu.parse(payload)
        await conn.send(tpdu.swapped().to_bytes() + payload[5:] + b"|echo")


async def start_echo(tg: anyio.abc.TaskGroup) -> int:
    port: int = await tg.start(functools.partial(serve_tcp, "127.0.0.1", 0, echo_front_end, name="echo"))
    return port


async def start_nac(tg: anyio.abc.TaskGroup, members: list[int], **limits: float) -> tuple[Nac, int, int]:
    nac = Nac({"0003": [("127.0.0.1", p) for p in members]}, NacLimits(**limits))  # type: ignore[arg-type]
    port, status = await tg.start(functools.partial(serve, "127.0.0.1", 0, nac=nac, status_port=0))
    await wait_until(lambda: all(m.conn for m in nac.groups["0003"]))
    return nac, port, status


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll a condition the NAC exposes no event for (connection state), under a deadline."""
    with anyio.fail_after(timeout):
        while not condition():  # noqa: ASYNC110 - nothing to wait on but the state itself
            await anyio.sleep(0.01)


async def terminal_round_trip(port: int, name: str, count: int) -> list[bytes]:
    conn = await connect("127.0.0.1", port, timeout=5)
    answers = []
    try:
        for i in range(count):
            body = HEADER + f"{name}-{i}".encode()
            await conn.send(Tpdu(dst="0003", src="0000").to_bytes() + body)
            answer = await conn.receive(5)
            assert answer is not None
            assert answer[:5] == Tpdu(dst="0000", src="0003").to_bytes()
            answers.append(answer[5:])
    finally:
        await conn.aclose()
    return answers


@settings(max_examples=5, deadline=None)
@given(
    terminals=st.integers(min_value=1, max_value=30),
    count=st.integers(min_value=1, max_value=5),
    seed=st.integers(min_value=0, max_value=1000),
)
def test_every_terminal_gets_exactly_its_own_answers(terminals: int, count: int, seed: int) -> None:
    async def scenario() -> None:
        async with anyio.create_task_group() as tg:
            nac, port, _ = await start_nac(tg, [await start_echo(tg)])
            results: dict[str, list[bytes]] = {}
            rng = random.Random(seed)

            async def one(name: str) -> None:
                await anyio.sleep(rng.random() / 100)
                if rng.random() < 0.2:  # some terminals connect and leave at once
                    stream = await anyio.connect_tcp("127.0.0.1", port)
                    await stream.aclose()
                results[name] = await terminal_round_trip(port, name, count)

            async with anyio.create_task_group() as clients:
                for t in range(terminals):
                    clients.start_soon(one, f"T{t}")
            for name, answers in results.items():
                assert answers == [HEADER + f"{name}-{i}|echo".encode() for i in range(count)]
            assert nac.router.in_flight == 0
            tg.cancel_scope.cancel()

    anyio.run(scenario)


async def test_failover_and_reconnect_when_an_upstream_dies() -> None:
    async with anyio.create_task_group() as tg:
        first_scope = anyio.CancelScope()
        first_port: int = await tg.start(functools.partial(_cancellable_echo, first_scope))
        second = await start_echo(tg)
        nac, port, _ = await start_nac(tg, [first_port, second])
        assert len(await terminal_round_trip(port, "before", 4)) == 4
        first_scope.cancel()  # the first member dies
        await wait_until(lambda: nac.groups["0003"][0].conn is None)
        assert len(await terminal_round_trip(port, "after", 6)) == 6  # all served by the second
        tg.cancel_scope.cancel()


async def _cancellable_echo(scope: anyio.CancelScope, *, task_status: anyio.abc.TaskStatus[int]) -> None:
    with scope:
        await serve_tcp("127.0.0.1", 0, echo_front_end, name="echo-1", task_status=task_status)


@pytest.mark.parametrize(
    "bad",
    [
        b"\x00\x00",  # zero length
        b"\xff\xff" + b"x" * 20,  # over the frame limit
        frame(b"\x61\x00\x03\x00\x00" + HEADER + b"x"),  # wrong TPDU ID
    ],
)
async def test_bad_input_closes_only_that_connection(bad: bytes) -> None:
    async with anyio.create_task_group() as tg:
        _, port, _ = await start_nac(tg, [await start_echo(tg)], max_frame_len=1024)
        rogue = await anyio.connect_tcp("127.0.0.1", port)
        await rogue.send(bad)
        with anyio.fail_after(5), pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
            await rogue.receive()
        assert len(await terminal_round_trip(port, "good", 2)) == 2
        await rogue.aclose()
        tg.cancel_scope.cancel()


async def test_unknown_destination_is_dropped_and_counted() -> None:
    async with anyio.create_task_group() as tg:
        nac, port, status = await start_nac(tg, [await start_echo(tg)])
        conn = await connect("127.0.0.1", port, timeout=5)
        await conn.send(Tpdu(dst="0009", src="0000").to_bytes() + HEADER + b"x")
        await conn.send(Tpdu(dst="0003", src="0000").to_bytes() + HEADER + b"y")
        answer = await conn.receive(5)  # the next good frame is still served
        assert answer is not None and answer.endswith(b"y|echo")
        await conn.aclose()
        assert nac.router.counters["unknown_route"] == 1
        stream = await anyio.connect_tcp("127.0.0.1", status)
        with anyio.fail_after(5):
            text = await stream.receive()
        assert b'"unknown_route": 1' in text
        await stream.aclose()
        tg.cancel_scope.cancel()
