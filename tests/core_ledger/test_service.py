"""The group-commit service under concurrency: what memory says must be exactly what the store says."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from core_ledger.api import LedgerAnswer, LedgerOp, LedgerRequest
from core_ledger.check import check_store
from core_ledger.engine import LedgerEngine
from core_ledger.service import LedgerService
from tests.core_ledger.conftest import StoreFactory
from tests.core_ledger.helpers import GOOD, NOW, OTHER, request, seeded_state
from wire.constants import ResponseCode

pytestmark = pytest.mark.anyio


async def test_follow_ups_decided_while_their_original_is_being_written(store_factory: StoreFactory) -> None:
    opener = store_factory()
    store = opener()
    state = seeded_state()
    store.save_static(state)
    store.commit([((t,), t.effects) for t in state.txns.values()])
    service = LedgerService(store, LedgerEngine(store.load(), clock=lambda: NOW))
    answers: dict[str, LedgerAnswer] = {}

    async def submit(req: LedgerRequest) -> None:
        answers[req.stan + req.op] = await service.submit(req)

    async with anyio.create_task_group() as tg:
        await tg.start(service.run_flusher)
        async with anyio.create_task_group() as clients:
            for i in range(40):
                pan = GOOD if i % 2 else OTHER
                buy = request(LedgerOp.PURCHASE, pan, 100 + i)
                clients.start_soon(submit, buy)
                await anyio.lowlevel.checkpoint()  # the purchase is decided, and maybe being written, when these arrive
                clients.start_soon(submit, request(LedgerOp.REFUND, pan, 10, original=buy))
                clients.start_soon(submit, request(LedgerOp.REFUND, pan, 20, original=buy))
                if i % 3 == 0:
                    clients.start_soon(submit, request(LedgerOp.REVERSAL, pan, 0, stan=buy.stan, original=buy))
                clients.start_soon(submit, buy)  # a repeat, possibly in the same batch as its original
        tg.cancel_scope.cancel()
    assert service.batches < len(answers)
    assert all(a.response_code in (ResponseCode.APPROVED, ResponseCode.INVALID_TRANSACTION) for a in answers.values())

    memory = service.state
    store.close()
    reopened = opener()
    durable = reopened.load()
    assert {k: (a.balance, a.held) for k, a in durable.accounts.items()} == {
        k: (a.balance, a.held) for k, a in memory.accounts.items()
    }
    assert {k: (t.status, t.refunded) for k, t in durable.txns.items()} == {
        k: (t.status, t.refunded) for k, t in memory.txns.items()
    }
    assert check_store(reopened) == []
    reopened.close()
