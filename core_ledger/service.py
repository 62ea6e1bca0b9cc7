"""The ledger service: decisions in memory, durability by group commit.

Requests are decided one at a time on the event loop (the engine is pure and fast), applied to the in-memory
state, and queued; one flusher writes everything queued so far in ONE store transaction (one fsync) in a
worker thread, then releases all the answers of that batch (``acqkit/groupcommit.py``, in fail-stop mode). A
request is answered only once its batch is durable. A repeat waits for the batch in progress too, so it can
never be answered before its original.

If a commit fails the memory state is ahead of the store: the service stops deciding (fail-stop) and answers
96 to everyone waiting and to every later request; :meth:`LedgerService.wait_stopped` then returns the failure
and the server ends with :class:`LedgerFailStop`, so the process exits (``acqsim ledger serve`` with
``EXIT_FAIL_STOP``) and its supervisor restarts it; on restart the state is loaded from the store, which holds
exactly the committed batches. A commit that does not finish in time (``CommitTimeout``) is fail-stop too,
but its requests get no answer at all (:class:`OutcomeUnknown`): the batch may still commit, so 96 could be a
lie; the front-end times out and reverses, which the restarted ledger applies or turns into a tombstone.
"""

from __future__ import annotations

import dataclasses
import logging

import anyio
import anyio.abc

from acqkit.groupcommit import COMMIT_TIMEOUT_S, CommitFailed, CommitTimeout, GroupCommit, Ticket
from core_ledger.api import LedgerAnswer, LedgerRequest
from core_ledger.engine import Decision, LedgerEngine
from core_ledger.model import Txn
from core_ledger.state import LedgerState
from core_ledger.store import LedgerStore, Posting, StoreError
from wire.constants import ResponseCode

log = logging.getLogger("acqsim.ledger")


class LedgerFailStop(RuntimeError):
    """A commit failed or hung: the ledger's memory may be ahead of its store, so the process must stop and be
    restarted from the store. Ends :func:`core_ledger.server.serve`."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"ledger fail-stop: {cause}")
        self.cause = cause


class OutcomeUnknown(RuntimeError):
    """The request's batch did not become durable in time and may still commit: it must not be answered."""


@dataclasses.dataclass(frozen=True, slots=True)
class Pending:
    """A request decided and queued for commit (:meth:`LedgerService.enqueue`): its answer, held until the
    ``ticket``'s batch is durable (``None``: nothing to wait for, the answer is final)."""

    answer: LedgerAnswer
    ticket: Ticket[None] | None


class LedgerService:
    def __init__(self, store: LedgerStore, engine: LedgerEngine, *, commit_timeout: float = COMMIT_TIMEOUT_S) -> None:
        self.store = store
        self.engine = engine
        self._commits: GroupCommit[Posting, None] = GroupCommit(
            "ledger", self._commit, fail_stop=True, timeout=commit_timeout
        )
        self.failure: BaseException | None = None
        self._stopped: anyio.Event | None = None  # made by run_flusher, on the event loop

    @property
    def failed(self) -> bool:
        """A commit failed or hung: every request is answered 96 until the service is restarted."""
        return self.failure is not None or self._commits.failed is not None

    def _stop(self, cause: BaseException) -> None:
        if self.failure is None:
            self.failure = cause
            log.error("ledger fail-stop, answering 96 until restarted: %s", cause)
            if self._stopped is not None:
                self._stopped.set()

    async def wait_stopped(self) -> BaseException:
        """Wait until the service has failed (needs :meth:`run_flusher` running); returns the cause."""
        if self._stopped is None:
            raise RuntimeError("wait_stopped() before run_flusher() started")
        await self._stopped.wait()
        assert self.failure is not None
        return self.failure

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
        # Written: the history may now let go of what these postings changed (only this thread adds to it).
        self.engine.state.txns.durable += len(batch)
        return [None] * len(batch)

    def _decide(self, request: LedgerRequest) -> Decision | None:
        """The engine's decision, or ``None`` when it needed a transaction no longer in memory and the store could
        not be read: that request is answered 96 with nothing changed, and the others go on (a store that cannot
        be written either fails the next commit, and the service stops then)."""
        try:
            decision = self.engine.decide(request)
            self.engine.state.read_counters(decision.effects)  # so that applying it reads nothing
            return decision
        except StoreError as exc:
            log.error("%s RRN %s answered 96: %s", request.op, request.rrn, exc)  # noqa: TRY400 - the cause says it
            return None

    def _apply(self, decision: Decision) -> tuple[Txn, ...]:
        """Apply ``decision`` to memory as the next posting queued; its new records, snapshot for the writer."""
        # Snapshot the new records before later decisions change them in memory (status, refunded): the
        # worker thread writes them while the event loop goes on deciding.
        records = tuple(dataclasses.replace(txn) for txn in decision.records)
        self.engine.state.txns.queued += 1
        self.engine.commit(decision)
        return records

    async def submit(self, request: LedgerRequest) -> LedgerAnswer:
        if self.failed:
            return LedgerAnswer(response_code=ResponseCode.SYSTEM_MALFUNCTION, rrn=request.rrn)
        decision = self._decide(request)
        if decision is None:
            return LedgerAnswer(response_code=ResponseCode.SYSTEM_MALFUNCTION, rrn=request.rrn)
        records = self._apply(decision)
        try:
            await self._commits.submit((records, decision.effects))
        except CommitFailed as exc:  # rolled back: nothing of this batch is in the store
            self._stop(exc)
            return LedgerAnswer(response_code=ResponseCode.SYSTEM_MALFUNCTION, rrn=request.rrn)
        except CommitTimeout as exc:  # still being written: may commit yet
            self._stop(exc)
            raise OutcomeUnknown(str(exc)) from None
        return decision.answer

    def enqueue(self, request: LedgerRequest) -> Pending:
        """Decide ``request`` now and queue its records for the next group commit, without waiting: the answer
        may go out once :meth:`settled` says so (after ``pending.ticket.done``). A failed service answers 96 at
        once (``ticket`` None). For a server answering a connection's requests from one task."""
        if self.failed:
            return Pending(LedgerAnswer(response_code=ResponseCode.SYSTEM_MALFUNCTION, rrn=request.rrn), None)
        decision = self._decide(request)
        if decision is None:
            return Pending(LedgerAnswer(response_code=ResponseCode.SYSTEM_MALFUNCTION, rrn=request.rrn), None)
        records = self._apply(decision)
        try:
            return Pending(decision.answer, self._commits.enqueue((records, decision.effects)))
        except CommitFailed as exc:
            self._stop(exc)
            return Pending(LedgerAnswer(response_code=ResponseCode.SYSTEM_MALFUNCTION, rrn=request.rrn), None)

    def settled(self, pending: Pending) -> LedgerAnswer:
        """The answer of a request queued by :meth:`enqueue` whose batch is done (or that never had one)."""
        if pending.ticket is None:
            return pending.answer
        try:
            pending.ticket.result()
        except CommitFailed as exc:  # rolled back: nothing of this batch is in the store
            self._stop(exc)
            return LedgerAnswer(response_code=ResponseCode.SYSTEM_MALFUNCTION, rrn=pending.answer.rrn)
        return pending.answer

    def timed_out(self) -> None:
        """A request queued by :meth:`enqueue` was not durable within :attr:`commit_timeout`: fail-stop, and
        the caller answers it nothing (its outcome is unknown)."""
        self._stop(CommitTimeout(self._commits.what, self._commits.timeout))

    @property
    def stopping(self) -> bool:
        """The flusher is stopping (the server is cancelled): requests queued now are never written, and get no
        answer rather than a fail-stop's 96 (the process is ending, not failing)."""
        return self._commits.stopping

    @property
    def commit_timeout(self) -> float:
        return self._commits.timeout

    async def run_flusher(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        self._stopped = anyio.Event()
        if self.failure is not None:
            self._stopped.set()
        await self._commits.run_flusher(task_status=task_status)
