"""The ledger service: decisions in memory, durability by group commit.

Requests are decided one at a time on the event loop (the engine is pure and fast), applied to the in-memory
state, and queued; one flusher writes everything queued so far in ONE store transaction (one fsync) in a
worker thread, then releases all the answers of that batch. A request is answered only once its batch is
durable. A repeat waits for the batch in progress too, so it can never be answered before its original.

If a commit fails the memory state is ahead of the store: the service stops deciding (fail-stop) and answers
96 to everyone waiting and to every later request, until it is restarted; on restart the state is loaded from
the store, which holds exactly the committed batches. The server keeps its connections, so callers get a
clear 96 rather than a broken connection.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Final

import anyio
import anyio.abc

from core_ledger.api import LedgerAnswer, LedgerRequest
from core_ledger.engine import LedgerEngine
from core_ledger.state import LedgerState
from core_ledger.store import LedgerStore, Posting
from wire.constants import ResponseCode

log = logging.getLogger("acqsim.ledger")

#: Longest a request may wait for its batch to become durable.
COMMIT_TIMEOUT_S: Final = 10.0


class LedgerService:
    def __init__(self, store: LedgerStore, engine: LedgerEngine) -> None:
        self.store = store
        self.engine = engine
        self._batch: list[Posting] = []
        self._batch_done = anyio.Event()
        self._wakeup = anyio.Event()
        self._failed = False
        self.batches = 0
        self.committed = 0

    @property
    def failed(self) -> bool:
        """A commit failed: every request is answered 96 until the service is restarted."""
        return self._failed

    @property
    def state(self) -> LedgerState:
        return self.engine.state

    async def submit(self, request: LedgerRequest) -> LedgerAnswer:
        if self._failed:
            return LedgerAnswer(response_code=ResponseCode.SYSTEM_MALFUNCTION, rrn=request.rrn)
        decision = self.engine.decide(request)
        # Snapshot the new records before later decisions change them in memory (status, refunded): the
        # worker thread writes them while the event loop goes on deciding.
        records = tuple(dataclasses.replace(txn) for txn in decision.records)
        self.engine.commit(decision)
        self._batch.append((records, decision.effects))
        done = self._batch_done
        self._wakeup.set()
        with anyio.fail_after(COMMIT_TIMEOUT_S):
            await done.wait()
        if self._failed:
            return LedgerAnswer(response_code=ResponseCode.SYSTEM_MALFUNCTION, rrn=request.rrn)
        return decision.answer

    async def run_flusher(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            await self._wakeup.wait()
            self._wakeup = anyio.Event()
            batch, done = self._batch, self._batch_done
            self._batch, self._batch_done = [], anyio.Event()
            try:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(self.store.commit, batch)
            except Exception as exc:
                self._failed = True
                done.set()
                self._batch_done.set()  # requests queued meanwhile are answered 96 too, not left to time out
                log.error("ledger commit failed, answering 96 until restarted: %s", exc)  # noqa: TRY400 - no payload
                return
            self.batches += 1
            self.committed += len(batch)
            done.set()
