"""FramedConnection: frames sent by concurrent tasks go out whole, in order, in fewer writes."""

from __future__ import annotations

import anyio
import anyio.abc
import pytest

from acqkit.netio import FramedConnection, peer_name
from wire.framing import LengthPrefixFramer

pytestmark = pytest.mark.anyio


class RecordingStream(anyio.abc.ByteStream):
    """A byte stream that keeps every write (no network: the test is about how writes are grouped)."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    async def send(self, item: bytes) -> None:
        await anyio.lowlevel.checkpoint()
        self.writes.append(item)

    async def receive(self, max_bytes: int = 65536) -> bytes:
        raise anyio.EndOfStream

    async def send_eof(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


def iter_frames(framer: LengthPrefixFramer) -> list[bytes]:
    out = []
    while isinstance(item := framer.next_frame(), bytes):
        out.append(item)
    return out


async def test_concurrent_sends_are_gathered_into_one_write() -> None:
    stream = RecordingStream()
    conn = FramedConnection(stream)
    payloads = [f"answer {i}".encode() for i in range(10)]
    called: list[bytes] = []

    async def send(payload: bytes) -> None:
        called.append(payload)  # the order the tasks call send in (trio runs new tasks in any order)
        await conn.send(payload)

    async with anyio.create_task_group() as tg:
        for payload in payloads:
            tg.start_soon(send, payload)
    assert iter_frames(_framer_with(b"".join(stream.writes))) == called  # every frame whole, in call order
    assert sorted(called) == sorted(payloads)
    assert len(stream.writes) < len(payloads)


async def test_a_lone_send_and_send_many() -> None:
    stream = RecordingStream()
    conn = FramedConnection(stream)
    await conn.send(b"one")
    await conn.send_many([b"two", b"three"])
    assert stream.writes == [b"\x00\x03one", b"\x00\x03two\x00\x05three"]


def _framer_with(data: bytes) -> LengthPrefixFramer:
    framer = LengthPrefixFramer()
    framer.receive_data(data)
    return framer


@pytest.mark.parametrize("options", [{}, {"use_uvloop": True}], ids=["asyncio", "uvloop"])
def test_peer_name_of_a_closed_socket_is_a_question_mark_not_an_error(options: dict[str, bool]) -> None:
    """Servers name the peer while handling a reset: asking must never raise (uvloop's closed socket does)."""

    async def check() -> None:
        async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener:
            port = listener.extra(anyio.abc.SocketAttribute.local_port)
            stream = await anyio.connect_tcp("127.0.0.1", port)
            await stream.aclose()
            # first asked after the close, as a server does when a reset ends its handler
            assert peer_name(stream) in ("?", f"127.0.0.1:{port}")
            other = await anyio.connect_tcp("127.0.0.1", port)
            assert peer_name(other) == f"127.0.0.1:{port}"
            await other.aclose()

    anyio.run(check, backend="asyncio", backend_options=options)
