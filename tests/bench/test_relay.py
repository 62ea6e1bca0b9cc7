"""The benchmark's floors are real relays: each carries frames end to end and hands every answer to its own client."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import anyio
import pytest

from acqkit.netio import connect
from bench.bench_e2e import RelayChain, callback_chain, callback_shape_chain, relay_chain, shape_chain


@pytest.mark.parametrize(
    "chain",
    [relay_chain, shape_chain, callback_chain, callback_shape_chain],
    ids=["relay", "shape", "callbacks", "callback shape"],
)
def test_every_client_gets_its_own_frames_back(
    chain: Callable[[], contextlib.AbstractContextManager[RelayChain]],
) -> None:
    async def client(entry: RelayChain, number: int, got: dict[int, list[bytes]]) -> None:
        conn = await connect(entry.entry.host, entry.entry.port, timeout=5)
        try:
            for frame in range(5):
                await conn.send(f"client {number} frame {frame}".encode())
                answer = await conn.receive(5)
                assert answer is not None
                got[number].append(answer)
        finally:
            await conn.aclose()

    with chain() as running:
        got: dict[int, list[bytes]] = {number: [] for number in range(8)}

        async def run() -> None:
            async with anyio.create_task_group() as tg:
                for number in got:
                    tg.start_soon(client, running, number, got)

        anyio.run(run)
    assert got == {number: [f"client {number} frame {frame}".encode() for frame in range(5)] for number in got}
