"""The runtime's TCP serving: a connection cap with counted refusals, and a listener that survives running out
of file descriptors (EMFILE) and serves again once they are back — on both anyio backends, over loopback."""

from __future__ import annotations

import functools
import os
import resource

import anyio
import pytest

from acqkit.netio import ConnectionGate, FramedConnection, connect, serve_tcp

pytestmark = pytest.mark.anyio
HOST = "127.0.0.1"
STEP_S = 10.0


async def echo(conn: FramedConnection) -> None:
    while (payload := await conn.receive(STEP_S)) is not None:
        await conn.send(payload)


async def echoes(conn: FramedConnection, payload: bytes) -> bool:
    await conn.send(payload)
    return await conn.receive(STEP_S) == payload


async def test_connections_over_the_cap_are_closed_at_once_and_counted() -> None:
    gate = ConnectionGate("capped", max_connections=3)
    async with anyio.create_task_group() as tg:
        port = await tg.start(functools.partial(serve_tcp, HOST, 0, echo, name="capped", gate=gate))
        held = [await connect(HOST, port, timeout=STEP_S) for _ in range(3)]
        for conn in held:
            assert await echoes(conn, b"held")
        extra = await connect(HOST, port, timeout=STEP_S)
        assert await extra.receive(STEP_S) is None  # refused: closed as it arrived
        assert gate.refused == 1 and gate.open == 3
        assert all([await echoes(conn, b"still served") for conn in held])
        await held[0].aclose()
        with anyio.fail_after(STEP_S):
            while gate.open == 3:  # noqa: ASYNC110 - the server notices the close on its own schedule
                await anyio.sleep(0.01)
        again = await connect(HOST, port, timeout=STEP_S)
        assert await echoes(again, b"a place is free again")
        for conn in [*held[1:], extra, again]:
            await conn.aclose()
        tg.cancel_scope.cancel()


async def test_the_listener_survives_emfile_and_serves_again() -> None:
    gate = ConnectionGate("starved")
    async with anyio.create_task_group() as tg:
        port = await tg.start(functools.partial(serve_tcp, HOST, 0, echo, name="starved", gate=gate))
        healthy = await connect(HOST, port, timeout=STEP_S)
        assert await echoes(healthy, b"before")
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        try:
            # one descriptor left: the test's own socket takes it, so the server's accept() fails (EMFILE)
            first_free, second_free = os.open(os.devnull, os.O_RDONLY), os.open(os.devnull, os.O_RDONLY)
            os.close(first_free)
            os.close(second_free)
            resource.setrlimit(resource.RLIMIT_NOFILE, (second_free, hard))
            waiting = await connect(HOST, port, timeout=STEP_S)
            await anyio.sleep(0.3)  # accept() fails and backs off meanwhile; nothing to wait for but time
            assert gate.open == 1
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        assert await echoes(waiting, b"accepted once descriptors are back")
        assert await echoes(healthy, b"and the first one was never disturbed")
        await waiting.aclose()
        await healthy.aclose()
        tg.cancel_scope.cancel()


def test_a_gate_needs_room_for_one() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ConnectionGate("none", max_connections=0)
