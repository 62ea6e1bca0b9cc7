"""The direct transport path of FramedConnection on asyncio (acqkit/directsocket.py) over real loopback TCP:
taken where it applies (and only there), frames whole and in order both ways, a large write waits for a slow
reader (backpressure), and the end of the stream and a closed link look as they do through anyio."""

from __future__ import annotations

import functools

import anyio
import anyio.abc
import pytest

from acqkit.directsocket import DirectSocket
from acqkit.netio import FramedConnection, connect, serve_tcp

pytestmark = pytest.mark.anyio

#: The services run on uvloop where it is installed (acqkit.runner), so the direct path is tested there too.
BACKENDS = [
    pytest.param("asyncio", id="asyncio"),
    pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"),
    pytest.param("trio", id="trio"),
]


@pytest.fixture(params=BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> object:
    return request.param


HOST = "127.0.0.1"
STEP_TIMEOUT_S = 10.0
#: Frames of one write: far more than loopback socket buffers hold (32 MB), so it cannot finish unread.
FRAME = bytes(range(250)) * 32  # 8,000 bytes: under the default frame limit
FRAMES = 32 * 1024 * 1024 // len(FRAME)


async def echo(conn: FramedConnection) -> None:
    while (payload := await conn.receive()) is not None:
        await conn.send(payload)


async def test_the_direct_path_is_taken_on_asyncio_plain_tcp_only(anyio_backend: object) -> None:
    """With the pinned anyio, asyncio's (and uvloop's) plain TCP streams go direct; trio's use anyio's calls."""
    async with anyio.create_task_group() as tg:
        port = await tg.start(functools.partial(serve_tcp, HOST, 0, echo, name="echo"))
        client = await connect(HOST, port, timeout=STEP_TIMEOUT_S)
        assert (DirectSocket.of(client.stream) is not None) == (anyio_backend != "trio")
        await client.aclose()
        tg.cancel_scope.cancel()


async def test_an_unknown_stream_has_no_direct_path() -> None:
    left, right = anyio.create_memory_object_stream[bytes](1)
    stream = anyio.streams.stapled.StapledObjectStream(left, right)
    assert DirectSocket.of(stream) is None  # type: ignore[arg-type]  # not a byte stream: nothing to find in it
    left.close()
    right.close()


async def test_frames_go_whole_and_in_order_both_ways() -> None:
    payloads = [bytes([i % 256]) * (1 + i * 37 % 3000) for i in range(300)]
    async with anyio.create_task_group() as tg:
        port = await tg.start(functools.partial(serve_tcp, HOST, 0, echo, name="echo"))
        client = await connect(HOST, port, timeout=STEP_TIMEOUT_S)
        with anyio.fail_after(STEP_TIMEOUT_S):
            for payload in payloads:  # all out before any is read back: answers queue up on the way
                await client.send(payload)
            assert [await client.receive() for _ in payloads] == payloads
        await client.aclose()
        tg.cancel_scope.cancel()


async def test_a_large_write_waits_for_the_reader_and_arrives_whole() -> None:
    """The server writes 32 MB to a client that has stopped reading (a stream reads only while its owner waits
    for data): the write is held back until the client reads again, then every frame arrives."""
    sent, greeted = anyio.Event(), anyio.Event()

    async def flood(conn: FramedConnection) -> None:
        await conn.send(b"hello")
        await greeted.wait()
        await conn.send_many([FRAME] * FRAMES)
        sent.set()
        await conn.receive(STEP_TIMEOUT_S)  # hold the connection open until the client is done

    async with anyio.create_task_group() as tg:
        port = await tg.start(functools.partial(serve_tcp, HOST, 0, flood, name="flood"))
        client = await connect(HOST, port, timeout=STEP_TIMEOUT_S)
        assert await client.receive(STEP_TIMEOUT_S) == b"hello"  # then the client reads nothing for a while
        greeted.set()
        for _ in range(50):  # the write cannot finish while nobody reads: the sender is held back
            await anyio.lowlevel.checkpoint()
        assert not sent.is_set()
        with anyio.fail_after(STEP_TIMEOUT_S):
            got = [await client.receive() for _ in range(FRAMES)]
            await sent.wait()
        assert got == [FRAME] * FRAMES
        await client.aclose()
        tg.cancel_scope.cancel()


async def test_the_peer_closing_is_the_end_of_the_stream_and_a_closed_link_refuses_writes() -> None:
    async def close_at_once(conn: FramedConnection) -> None:
        await conn.aclose()

    async with anyio.create_task_group() as tg:
        port = await tg.start(functools.partial(serve_tcp, HOST, 0, close_at_once, name="closer"))
        client = await connect(HOST, port, timeout=STEP_TIMEOUT_S)
        assert await client.receive(STEP_TIMEOUT_S) is None
        await client.aclose()
        with pytest.raises(anyio.ClosedResourceError):
            await client.send(b"after close")
        tg.cancel_scope.cancel()


async def test_small_frames_gathered_in_a_turn_keep_their_order_around_a_large_one() -> None:
    """Small frames wait for the end of the loop turn, a large one is written at once: one sent between small
    ones must still arrive between them (the gathered frames before it are written first)."""
    large = FRAME * 4  # over GATHER_MAX_BYTES: written at once
    payloads = [b"a1", b"a2", large, b"b1", FRAME, b"b2"]

    async def burst(conn: FramedConnection) -> None:
        assert await conn.receive(STEP_TIMEOUT_S) == b"go"
        for payload in payloads:  # no other task runs in between: one loop turn unless the large one waits
            await conn.send(payload)
        await conn.receive(STEP_TIMEOUT_S)  # hold the connection open until the client is done

    async with anyio.create_task_group() as tg:
        port = await tg.start(functools.partial(serve_tcp, HOST, 0, burst, name="burst", max_frame_len=len(large)))
        client = await connect(HOST, port, timeout=STEP_TIMEOUT_S, max_frame_len=len(large))
        await client.send(b"go")
        with anyio.fail_after(STEP_TIMEOUT_S):
            assert [await client.receive() for _ in payloads] == payloads
        await client.aclose()
        tg.cancel_scope.cancel()
