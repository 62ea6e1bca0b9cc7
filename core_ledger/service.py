"""The ledger service: decisions in memory, durability by group commit.

Requests are decided one at a time on the event loop (the engine is pure and fast), applied to the in-memory
state, and queued; one flusher writes everything queued so far in ONE store transaction (one fsync) in a
worker thread, then releases all the answers of that batch (``acqkit/groupcommit.py``, in fail-stop mode). A
request is answered only once its batch is durable. A repeat waits for the batch in progress too, so it can
never be answered before its original.

If a commit fails the memory state is ahead of the store: the service stops deciding (fail-stop) and answers
96 to everyone waiting and to every later request, until it is restarted; on restart the state is loaded from
the store, which holds exactly the committed batches. The server keeps its connections, so callers get a
clear 96 rather than a broken connection.
"""

from __future__ import annotations

import dataclasses
import logging

import anyio
import anyio.abc

from acqkit.groupcommit import CommitFailed, GroupCommit
from core_ledger.api import LedgerAnswer, LedgerRequest
from core_ledger.engine import LedgerEngine
from core_ledger.state import LedgerState
from core_ledger.store import LedgerStore, Posting
from wire.constants import ResponseCode

log = logging.getLogger("acqsim.ledger")


class LedgerService:
    def __init__(self, store: LedgerStore, engine: LedgerEngine) -> None:
        self.store = store
        self.engine = engine
        self._commits: GroupCommit[Posting, None] = GroupCommit("ledger", self._commit, fail_stop=True)
        self._failure_logged = False

    @property
    def failed(self) -> bool:
        """A commit failed: every request is answered 96 until the service is restarted."""
        return self._commits.failed is not None

    @property
    def batches(self) -> int:
        return self._commits.batches

    @property
    def committed(self) -> int:
        return self._commits.items

    @property
    def state(self) -> LedgerState:
        return self.engine.state

    def _commit(self, batch: list[Posting]) -> list[None]:
        self.store.commit(batch)
        return [None] * len(batch)

    async def submit(self, request: LedgerRequest) -> LedgerAnswer:
        if self.failed:
            return LedgerAnswer(response_code=ResponseCode.SYSTEM_MALFUNCTION, rrn=request.rrn)
        decision = self.engine.decide(request)
        # Snapshot the new records before later decisions change them in memory (status, refunded): the
        # worker thread writes them while the event loop goes on deciding.
        records = tuple(dataclasses.replace(txn) for txn in decision.records)
        self.engine.commit(decision)
        try:
            await self._commits.submit((records, decision.effects))
        except CommitFailed as exc:
            if not self._failure_logged:
                self._failure_logged = True
                log.error("ledger commit failed, answering 96 until restarted: %s", exc)  # noqa: TRY400 - no payload
            return LedgerAnswer(response_code=ResponseCode.SYSTEM_MALFUNCTION, rrn=request.rrn)
        return decision.answer

    async def run_flusher(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        await self._commits.run_flusher(task_status=task_status)
