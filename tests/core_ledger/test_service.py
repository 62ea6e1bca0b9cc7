"""The group-commit service under concurrency: what memory says must be exactly what the store says."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import anyio
import anyio.abc
import anyio.lowlevel
import pytest

from core_ledger.api import LedgerAnswer, LedgerOp, LedgerRequest
from core_ledger.check import check_store
from core_ledger.client import LedgerClient, LedgerTimeout, LedgerUnavailable
from core_ledger.engine import LedgerEngine
from core_ledger.service import LedgerService
from core_ledger.store import LedgerStore, Posting
from tests.core_ledger.conftest import StoreFactory
from tests.core_ledger.helpers import GOOD, NOW, OTHER, FailStopWatch, request, seeded_state
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


class _HangingStore:
    """A store whose commits block until released: a database that stopped answering."""

    def __init__(self, inner: LedgerStore) -> None:
        self.inner = inner
        self.release = threading.Event()

    def commit(self, batch: Sequence[Posting], *, settled: Sequence[str] = ()) -> None:
        self.release.wait(30)
        self.inner.commit(batch, settled=settled)


async def test_a_hung_commit_gets_no_answer_and_stops_the_server(store_factory: StoreFactory) -> None:
    """Issue #14.6: a group-commit timeout no longer escapes; the request's outcome is unknown, so it gets no
    answer (the front-end reverses), and serve ends with LedgerFailStop for a restart from the store."""
    store = store_factory()()
    state = seeded_state()
    store.save_static(state)
    store.commit([((t,), t.effects) for t in state.txns.values()])
    hanging = _HangingStore(store)
    service = LedgerService(store, LedgerEngine(store.load(), clock=lambda: NOW), commit_timeout=0.2)
    service.store = hanging  # type: ignore[assignment]  # only commit is used while serving
    watch = FailStopWatch(service)
    async with anyio.create_task_group() as tg:
        port = await tg.start(watch.serve)
        async with await LedgerClient.connect("127.0.0.1", port, timeout=2) as client:
            with pytest.raises((LedgerTimeout, LedgerUnavailable)):  # no answer: never a guessed 96 or 00
                await client.submit(request(LedgerOp.PURCHASE, GOOD, 100))
        assert service.failed
        hanging.release.set()  # serve can end only once the write it started returns (it is shielded)
        with anyio.fail_after(10):
            await watch.ended.wait()
    assert len(watch.stopped) == 1
    assert "outcome unknown" in str(watch.stopped[0])
    assert service.failed
    store.close()
