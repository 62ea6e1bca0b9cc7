"""A multiplexed link whose write fails: every caller whose request was in that write hears LinkLost at once."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from acqkit.multiplex import LinkLost, MultiplexedLink
from acqkit.netio import FramedConnection
from tests.acqkit.test_serving import GatedStream, wait_until

pytestmark = pytest.mark.anyio


def decode(payload: bytes) -> tuple[bytes, bytes]:
    return payload[:1], payload


@pytest.mark.parametrize("fail_from", [1, 2], ids=["first-write-fails", "batch-write-fails"])
async def test_every_caller_in_a_failed_write_gets_link_lost_without_waiting_for_a_timeout(fail_from: int) -> None:
    stream = GatedStream(fail_from=fail_from)
    link: MultiplexedLink[bytes, bytes] = MultiplexedLink(FramedConnection(stream), decode, what="peer")
    outcomes: dict[str, str] = {}

    async def call(name: str) -> None:
        try:
            await link.exchange_many([(name.encode()[:1], name.encode())])
            outcomes[name] = "answered"
        except LinkLost as exc:
            outcomes[name] = exc.reason

    with anyio.fail_after(2.0):  # far less than any caller's own timeout would be
        async with anyio.create_task_group() as tg:
            tg.start_soon(call, "a")
            await wait_until(lambda: stream.calls == 1)
            tg.start_soon(call, "b")
            tg.start_soon(call, "c")
            await anyio.lowlevel.checkpoint()
            stream.gate.set()
    assert set(outcomes) == {"a", "b", "c"}
    assert all("send failed" in reason or "connection lost" in reason for reason in outcomes.values())
    assert link.dead is not None
