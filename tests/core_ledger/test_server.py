"""The ledger's host-link server and client over real loopback TCP, on both anyio backends."""

from __future__ import annotations

import functools
from pathlib import Path

import anyio
import pytest

from acqsim.config import AcqsimConfig
from core_ledger.api import LedgerOp
from core_ledger.client import LedgerClient
from core_ledger.server import serve
from core_ledger.setup import open_service
from tests.core_ledger.helpers import request
from wire.codec import decode_host, encode_host
from wire.constants import ResponseCode
from wire.framing import frame

pytestmark = pytest.mark.anyio
GOOD = "6200001000000003"


async def test_concurrent_purchases_group_commit_and_restart(tmp_path: Path) -> None:
    db = str(tmp_path / "ledger.sqlite3")
    service = open_service(db, AcqsimConfig.default(data_dir=tmp_path))
    requests = [request(LedgerOp.PURCHASE, GOOD, 100) for _ in range(40)]
    async with anyio.create_task_group() as tg:
        port = await tg.start(functools.partial(serve, "127.0.0.1", 0, service=service))
        async with await LedgerClient.connect("127.0.0.1", port) as client:
            answers = []

            async def buy(i: int) -> None:
                answers.append(await client.submit(requests[i]))

            async with anyio.create_task_group() as buyers:
                for i in range(len(requests)):
                    buyers.start_soon(buy, i)
            assert [a.response_code for a in answers] == [ResponseCode.APPROVED] * 40
            repeat = await client.submit(requests[0])
            assert repeat.response_code is ResponseCode.APPROVED
            balance = await client.submit(request(LedgerOp.BALANCE, GOOD))
            assert balance.balance == 50_000_000 - 40 * 100

            # A malformed message closes only its own connection.
            rogue = await anyio.connect_tcp("127.0.0.1", port)
            await rogue.send(frame(b"not an ISO message"))
            with anyio.fail_after(5), pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                await rogue.receive()
            await rogue.aclose()
            # A decodable message without what the operation needs is answered 30.
            conn = await anyio.connect_tcp("127.0.0.1", port)
            await conn.send(frame(encode_host({"t": "0200", "3": "000000", "11": "000001"})))
            with anyio.fail_after(5):
                raw = await conn.receive()
            assert decode_host(raw[2:])["39"] == "30"
            await conn.aclose()
        assert service.batches < 40  # concurrent requests shared commits
        tg.cancel_scope.cancel()
    service.store.close()

    reopened = open_service(db, AcqsimConfig.default(data_dir=tmp_path))
    account = reopened.state.accounts[reopened.state.cards[GOOD].account_id]
    assert account.balance == 50_000_000 - 40 * 100  # nothing committed was lost, nothing doubled
    reopened.store.close()
