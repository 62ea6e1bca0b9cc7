"""The HSM client's 4-character headers: after a wrap, an answer that comes late never reaches a newer command."""

from __future__ import annotations

import functools

import anyio
import pytest

from acqkit.multiplex import TagAllocator, TagsExhausted
from acqkit.netio import FramedConnection, serve_tcp
from hsm_sim.client import HEADERS, HsmClient, HsmCommand, HsmUnavailable
from hsm_sim.processor import COMMAND_LEN, HEADER_LEN, response_code

pytestmark = pytest.mark.anyio

HOST = "127.0.0.1"
#: Short, so the held command times out quickly; the rest are answered at once.
SHORT_TIMEOUT_S = 0.3
LATE = b"late answer"


class HoldingHsm:
    """Answers every command with its own sequence number, except the first, whose answer it holds back and
    sends (late) just before answering command number ``release_at``."""

    def __init__(self, release_at: int) -> None:
        self.release_at = release_at
        self.seen = 0
        self.held: bytes | None = None

    def answer(self, payload: bytes, fields: bytes) -> bytes:
        head = payload[: HEADER_LEN + COMMAND_LEN].decode()
        return (head[:HEADER_LEN] + response_code(head[HEADER_LEN:]) + "00").encode() + fields

    async def handle(self, conn: FramedConnection) -> None:
        while (payload := await conn.receive(10.0)) is not None:
            self.seen += 1
            if self.seen == 1:
                self.held = self.answer(payload, LATE)
                continue
            if self.seen == self.release_at and self.held is not None:
                await conn.send(self.held)
            await conn.send(self.answer(payload, str(self.seen).encode()))


async def test_a_late_answer_after_the_header_wrapped_does_not_answer_a_newer_command() -> None:
    hsm = HoldingHsm(release_at=HEADERS + 1)
    async with anyio.create_task_group() as tg:
        port = await tg.start(functools.partial(serve_tcp, HOST, 0, hsm.handle, name="holding-hsm"))
        client = HsmClient(HOST, port, timeout=SHORT_TIMEOUT_S)
        with pytest.raises(HsmUnavailable, match="timed out"):
            await client._call("NC", b"")  # header 0000; its answer is held back
        client.timeout = 30.0  # the batch below is large
        batch = await client.call_many([HsmCommand("NC", b"")] * (HEADERS - 1))  # headers 0001 .. 9999
        assert [fields for _, fields in batch] == [str(n).encode() for n in range(2, HEADERS + 1)]
        # the next header would be 0000 again, whose late answer arrives just before this command's own
        _, fields = await client._call("NC", b"")
        assert fields == str(HEADERS + 1).encode()
        await client.aclose()
        tg.cancel_scope.cancel()


def test_tags_skip_those_in_flight_and_those_timed_out_until_the_connection_changes() -> None:
    tags = TagAllocator(3)
    assert [tags.take(1), tags.take(1)] == [0, 1]
    tags.answered(1)
    tags.abandoned(0, 1)  # timed out: its answer may still come on connection 1
    assert tags.take(1) == 2
    assert tags.take(1) == 1  # wrapped: 0 is skipped
    with pytest.raises(TagsExhausted):
        tags.take(1)
    assert tags.take(2) == 0  # a new connection: no late answer can come to 0
    assert tags.in_use == 3
