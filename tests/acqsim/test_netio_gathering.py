"""FramedConnection: frames sent by concurrent tasks go out whole, in order, in fewer writes."""

from __future__ import annotations

import anyio
import anyio.abc
import pytest

from acqsim.netio import FramedConnection
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
