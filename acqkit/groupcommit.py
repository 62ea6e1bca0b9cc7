"""Group commit: many concurrent callers, one durable write (one fsync) per batch, done in a worker thread.

Callers on the event loop :meth:`GroupCommit.submit` an item and wait; one flusher task hands everything
queued so far to ``commit`` in a worker thread of its own (:class:`~acqkit.dedicated.DedicatedThread`: a
fraction of ``to_thread``'s cost per hand-over), then releases every caller of that batch with its own
result. While a batch is being written, new items queue for the next one, so under load a batch holds
about as many items as arrived during one fsync — the cost of durability is shared, not paid per item.

Deadlines are kept per batch, by the flusher, not per caller: a caller of :meth:`GroupCommit.submit` waits on
its batch, which the flusher releases when it is written or, at the latest, :attr:`GroupCommit.timeout` after
the batch's first item came (a caller may so be told "unknown" a little early, never late). A cancel scope
per caller cost about 16 µs of CPU a write on uvloop — two writes a purchase in the front-end.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any, Final, Generic, TypeVar

import anyio
import anyio.abc
import sniffio

from acqkit.dedicated import DedicatedThread
from acqkit.metrics import COMMIT_SIZE, COMMITS

log = logging.getLogger("acqsim.groupcommit")

Item = TypeVar("Item")
Result = TypeVar("Result")

#: Longest a caller waits for its batch to become durable.
COMMIT_TIMEOUT_S: Final = 10.0


class CommitFailed(RuntimeError):
    """The batch holding this item could not be written; ``cause`` says why."""

    def __init__(self, what: str, cause: BaseException) -> None:
        super().__init__(f"{what}: commit failed: {type(cause).__name__}: {cause}")
        self.cause = cause


class CommitTimeout(TimeoutError):
    """The batch holding this item was not durable in time (:data:`COMMIT_TIMEOUT_S` by default). Its write goes
    on (it may still commit or fail): the item's outcome is *unknown*, and the caller must not guess it.

    A ``TimeoutError``, so callers that already treat a hung commit as a timeout keep doing so.
    """

    def __init__(self, what: str, timeout: float) -> None:
        super().__init__(f"{what}: commit not durable within {timeout:g} s: outcome unknown")


class _Batch(Generic[Item, Result]):
    __slots__ = ("done", "expired", "items", "on_release", "opened_at", "released", "results")

    def __init__(self) -> None:
        self.items: list[Item] = []
        self.results: Sequence[Result | BaseException] = ()
        #: When the first item came (the batch's deadline is ``timeout`` after it).
        self.opened_at = 0.0
        #: Set once the batch is written (or failed).
        self.done = anyio.Event()
        #: Set once the batch is written or failed, or past its deadline: what :meth:`GroupCommit.submit` waits on.
        self.released = anyio.Event()
        #: Past its deadline before it was written: its submitters were told the outcome is unknown.
        self.expired = False
        #: Called once when the batch is released (:meth:`Ticket.when_released`); ``None`` once they were.
        self.on_release: list[Callable[[], object]] | None = []

    def finish(self, results: Sequence[Result | BaseException]) -> None:
        self.results = results
        self.done.set()
        self._release()

    def expire(self) -> None:
        """Release the batch's submitters (outcome unknown); its write still goes on."""
        self.expired = True
        self._release()

    def _release(self) -> None:
        self.released.set()
        callbacks, self.on_release = self.on_release, None
        for callback in callbacks or ():
            try:
                callback()
            except Exception:  # a caller's bug must not stop the flusher (every later batch would hang)
                log.exception("a release callback of a %d-item batch failed", len(self.items))


class Ticket(Generic[Result]):
    """One item's place in a batch (:meth:`GroupCommit.enqueue`)."""

    __slots__ = ("_batch", "_index")

    def __init__(self, batch: _Batch[Any, Result], index: int) -> None:
        self._batch = batch
        self._index = index

    @property
    def done(self) -> anyio.Event:
        """Set once the item's batch is written (or failed)."""
        return self._batch.done

    @property
    def released(self) -> bool:
        """The item's batch is written or failed (:attr:`done`), or past its deadline (outcome unknown)."""
        return self._batch.on_release is None

    def when_released(self, callback: Callable[[], object]) -> None:
        """Call ``callback()`` once the item's batch is released: written or failed (:attr:`done` set), or past
        its deadline (:attr:`done` not set: the outcome is unknown, as :class:`CommitTimeout` says). At once if
        it already is. For a caller stepped from the event loop's callbacks instead of a task that waits: the
        flusher calls it on the event loop; an exception it raises is logged, never the flusher's."""
        callbacks = self._batch.on_release
        if callbacks is None:
            callback()
        else:
            callbacks.append(callback)

    def result(self) -> Result:
        """The item's result once :attr:`done`; raises its error (:class:`CommitFailed` for a failed batch)."""
        result = self._batch.results[self._index]
        if isinstance(result, BaseException):
            raise result
        return result


class GroupCommit(Generic[Item, Result]):
    """``commit(items)`` runs in a worker thread and returns one result per item, in order.

    A result that is an exception is raised to that item's caller only; an exception out of ``commit``
    itself fails the whole batch (:class:`CommitFailed` for each of its callers). With ``fail_stop`` a failed
    commit also fails everything after it — queued or submitted later — without writing anything more: for a
    caller whose memory is already ahead of the store (the ledger), a later batch must never be written
    without the one that failed. ``failed`` then holds the first failure.
    """

    def __init__(
        self,
        what: str,
        commit: Callable[[list[Item]], Sequence[Result | BaseException]],
        *,
        fail_stop: bool = False,
        timeout: float = COMMIT_TIMEOUT_S,
    ) -> None:
        self.what = what
        self.timeout = timeout
        self._commit = commit
        self._fail_stop = fail_stop
        self._batch: _Batch[Item, Result] = _Batch()
        self._wakeup = anyio.Event()
        self.batches = 0
        self.items = 0
        self.failed: CommitFailed | None = None
        #: The flusher is stopping (cancelled): the batches it releases now were not written and never will be.
        #: Release callbacks see it, to tell a shutdown from a failed write.
        self.stopping = False
        #: Queued batches released at their deadline while an earlier write hung: written with the next batch.
        self._overdue: list[_Batch[Item, Result]] = []
        self._thread = DedicatedThread(f"{what}-commit")
        #: The event loop's clock (the batches' deadlines are on it); the loop's own once the flusher runs.
        self._now: Callable[[], float] = anyio.current_time
        self._commits, self._commit_size = COMMITS.labels(committer=what), COMMIT_SIZE.labels(committer=what)

    @property
    def queued(self) -> int:
        """Items waiting for the next commit."""
        return len(self._batch.items)

    async def submit(self, item: Item) -> Result:
        """Queue ``item`` and wait until its batch is written: its result. :class:`CommitTimeout` when the batch
        is not written within :attr:`timeout` (the flusher keeps that deadline: it must be running)."""
        return await self.wait(self.enqueue(item))

    async def wait(self, ticket: Ticket[Result]) -> Result:
        """Wait until the batch of ``ticket`` (:meth:`enqueue`) is written: its item's result. :class:`CommitTimeout`
        when it is not written within :attr:`timeout`, as for :meth:`submit`; for a caller that queues an item,
        does something else meanwhile (an HSM call), then waits for it."""
        await ticket._batch.released.wait()
        return self.outcome(ticket)

    def outcome(self, ticket: Ticket[Result]) -> Result:
        """The result of a released ticket (:meth:`wait`, or :meth:`Ticket.when_released`'s callback): its
        item's result; :class:`CommitTimeout` when its batch was released at the deadline, not written."""
        if not ticket._batch.done.is_set():
            raise CommitTimeout(self.what, self.timeout)
        return ticket.result()

    def enqueue(self, item: Item) -> Ticket[Result]:
        """Queue ``item`` for the next commit without waiting: for a caller that waits for many items at once
        (one task answering a connection's requests in order, instead of a task per request). Wait on the
        ticket's ``done`` (within :attr:`timeout`: past it the outcome is unknown, as :class:`CommitTimeout`
        says), then take :meth:`Ticket.result`. Raises the fail-stop failure at once, like :meth:`submit`."""
        if self.failed is not None:
            raise self.failed
        batch = self._batch
        if not batch.items:
            batch.opened_at = self._now()
        batch.items.append(item)
        self._wakeup.set()
        return Ticket(batch, len(batch.items) - 1)

    async def run_flusher(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        self._now = _loop_clock()
        task_status.started()
        try:
            await self._flush_forever()
        finally:
            self._thread.stop()
            self.stopping = True
            # nothing queued is written any more: its callers are told so, not left waiting
            queued = [*self._overdue, self._batch]
            self._overdue, self._batch = [], _Batch()
            stopped = CommitFailed(self.what, RuntimeError("the group commit stopped"))
            _finish(queued, [stopped] * sum(len(batch.items) for batch in queued))

    async def _flush_forever(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup = anyio.Event()
            batches = [*self._overdue, self._batch] if self._overdue else [self._batch]
            self._overdue, self._batch = [], _Batch()
            items = [item for batch in batches for item in batch.items] if len(batches) > 1 else batches[0].items
            if self.failed is not None:  # fail-stop: nothing more is written
                _finish(batches, [self.failed] * len(items))
                continue
            try:
                results = await self._write(items, batches[-1])
            except Exception as exc:  # every caller of the batch is told, none is left waiting
                failure = CommitFailed(self.what, exc)
                results = [failure] * len(items)
                if self._fail_stop:
                    self.failed = failure
                    self._wakeup.set()  # release whoever queued for the next batch meanwhile
            else:
                self.batches += 1
                self.items += len(items)
                self._commits.inc()
                self._commit_size.observe(len(items))
            _finish(batches, results)

    async def _write(self, items: list[Item], batch: _Batch[Item, Result]) -> Sequence[Result | BaseException]:
        """``commit(items)`` in the thread, releasing at their deadlines the callers that wait too long for it:
        those of ``batch`` (the newest of this write), then those queued behind it, while the write hangs. Every
        wait is shielded: a started write is finished and its callers released, even when the flusher is
        cancelled (one cancel scope a batch, its deadline and shield in one)."""
        call = self._thread.hand_over(self._commit, items)
        with anyio.move_on_at(batch.opened_at + self.timeout, shield=True):
            await call.done.wait()
        if not call.done.is_set():  # past the deadline: the outcome is unknown to the callers, not to us
            batch.expire()
        while not call.done.is_set():
            queued = self._batch  # its first item may come while we wait: its deadline is then later than this
            wake_at = queued.opened_at + self.timeout if queued.items else anyio.current_time() + self.timeout
            with anyio.move_on_at(wake_at, shield=True):
                await call.done.wait()
            if not call.done.is_set() and queued.items and anyio.current_time() >= queued.opened_at + self.timeout:
                self._overdue.append(queued)  # written after the hung write, with the next batch
                self._batch = _Batch()  # before its callbacks run: what they queue goes to the new batch
                queued.expire()
        return call.outcome()


def _loop_clock() -> Callable[[], float]:
    """The running event loop's clock as a plain function. On asyncio, the loop's own ``time``: callable from a
    protocol callback too (``enqueue`` from :mod:`acqkit.frameprotocol`'s sessions), where ``anyio.current_time``
    cannot tell which loop runs unless it was started by ``anyio.run``."""
    if sniffio.current_async_library() == "asyncio":
        return asyncio.get_running_loop().time
    return anyio.current_time


def _finish(batches: list[_Batch[Item, Result]], results: Sequence[Result | BaseException]) -> None:
    """Hand each batch its share of ``results`` (in item order) and release its callers."""
    start = 0
    for batch in batches:
        batch.finish(results[start : start + len(batch.items)])
        start += len(batch.items)
