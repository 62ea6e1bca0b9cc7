"""Group commit: concurrent callers share batches, each gets its own result, a failed batch fails its callers."""

from __future__ import annotations

import threading

import anyio
import pytest

from acqkit.groupcommit import CommitFailed, CommitTimeout, GroupCommit

pytestmark = pytest.mark.anyio


class Store:
    """Records every batch; a batch holding "boom" fails as a whole, an item "bad" fails alone."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def commit(self, items: list[str]) -> list[str | BaseException]:
        self.batches.append(list(items))
        if "boom" in items:
            raise OSError("disk full")
        return [ValueError("bad item") if item == "bad" else item.upper() for item in items]


async def test_concurrent_callers_share_batches_and_each_gets_its_own_result() -> None:
    store = Store()
    commits: GroupCommit[str, str] = GroupCommit("test", store.commit)
    results: dict[int, str] = {}
    async with anyio.create_task_group() as tg:
        await tg.start(commits.run_flusher)

        async def one(i: int) -> None:
            results[i] = await commits.submit(f"item{i}")

        async with anyio.create_task_group() as callers:
            for i in range(50):
                callers.start_soon(one, i)
        tg.cancel_scope.cancel()
    assert results == {i: f"ITEM{i}" for i in range(50)}
    assert sorted(item for batch in store.batches for item in batch) == sorted(f"item{i}" for i in range(50))
    assert len(store.batches) < 50  # callers that arrived during a commit rode the next one
    assert commits.items == 50 and commits.batches == len(store.batches)


async def test_a_failing_item_fails_alone_and_a_failing_batch_fails_all_its_callers() -> None:
    store = Store()
    commits: GroupCommit[str, str] = GroupCommit("test", store.commit)
    outcomes: dict[str, str] = {}
    async with anyio.create_task_group() as tg:
        await tg.start(commits.run_flusher)

        async def one(item: str) -> None:
            try:
                outcomes[item] = await commits.submit(item)
            except ValueError as exc:
                outcomes[item] = f"ValueError: {exc}"
            except CommitFailed as exc:
                outcomes[item] = f"CommitFailed: {exc.cause}"

        async with anyio.create_task_group() as callers:
            for item in ("a", "bad", "b"):
                callers.start_soon(one, item)
        assert outcomes == {"a": "A", "bad": "ValueError: bad item", "b": "B"}

        async with anyio.create_task_group() as callers:
            for item in ("c", "boom"):
                callers.start_soon(one, item)
        assert outcomes["boom"] == "CommitFailed: disk full"
        assert outcomes["c"] in ("C", "CommitFailed: disk full")  # in the failed batch, or committed before it
        assert await commits.submit("after") == "AFTER"  # the flusher carries on with later batches
        tg.cancel_scope.cancel()


async def test_fail_stop_writes_nothing_after_a_failed_commit() -> None:
    """The ledger's mode: its memory is ahead of the store, so no later batch may be written without the lost one."""
    store = Store()
    commits: GroupCommit[str, str] = GroupCommit("test", store.commit, fail_stop=True)
    async with anyio.create_task_group() as tg:
        await tg.start(commits.run_flusher)
        assert await commits.submit("a") == "A"
        with pytest.raises(CommitFailed):
            await commits.submit("boom")
        assert commits.failed is not None
        with pytest.raises(CommitFailed):
            await commits.submit("later")
        tg.cancel_scope.cancel()
    assert store.batches == [["a"], ["boom"]]  # "later" never reached the store
    assert commits.batches == 1 and commits.items == 1  # only what was committed counts


async def test_a_hung_commit_is_a_commit_timeout_whose_write_goes_on() -> None:
    """A caller whose batch is not durable in time gets CommitTimeout (a TimeoutError: the outcome is unknown),
    and the write it was part of still finishes: the flusher neither drops nor repeats it."""
    release = threading.Event()
    written: list[list[str]] = []

    def slow_commit(items: list[str]) -> list[str]:
        release.wait(10)
        written.append(list(items))
        return items

    commits: GroupCommit[str, str] = GroupCommit("test", slow_commit, fail_stop=True, timeout=0.2)
    async with anyio.create_task_group() as tg:
        await tg.start(commits.run_flusher)
        with pytest.raises(CommitTimeout) as caught:
            await commits.submit("late")
        assert isinstance(caught.value, TimeoutError)
        assert "outcome unknown" in str(caught.value)
        release.set()
        with anyio.fail_after(10):
            assert await commits.submit("next") == "next"  # batches are written in turn: "late" went first
        tg.cancel_scope.cancel()
    assert written == [["late"], ["next"]]


async def test_items_enqueued_without_waiting_share_a_batch_and_each_ticket_has_its_result() -> None:
    store = Store()
    commits: GroupCommit[str, str] = GroupCommit("test", store.commit)
    async with anyio.create_task_group() as tg:
        await tg.start(commits.run_flusher)
        tickets = [commits.enqueue(item) for item in ("a", "bad", "c")]
        with anyio.fail_after(5):
            await tickets[-1].done.wait()
        assert all(ticket.done.is_set() for ticket in tickets)
        assert tickets[0].result() == "A" and tickets[2].result() == "C"
        with pytest.raises(ValueError, match="bad item"):
            tickets[1].result()
        boom = commits.enqueue("boom")
        with anyio.fail_after(5):
            await boom.done.wait()
        with pytest.raises(CommitFailed):
            boom.result()
        tg.cancel_scope.cancel()
    assert store.batches == [["a", "bad", "c"], ["boom"]]


async def test_callers_queued_behind_a_hung_write_time_out_too_and_their_items_are_written_after_it() -> None:
    """The flusher keeps every caller's deadline, also for batches queued behind a write that hangs; what they
    queued is still written once the hung write ends, in order."""
    release = threading.Event()
    written: list[str] = []

    def slow_commit(items: list[str]) -> list[str]:
        if "late" in items:
            release.wait(10)
        written.extend(items)
        return items

    commits: GroupCommit[str, str] = GroupCommit("test", slow_commit, timeout=0.2)
    async with anyio.create_task_group() as tg:
        await tg.start(commits.run_flusher)
        with pytest.raises(CommitTimeout):
            await commits.submit("late")
        # the scenario, not synchronisation: a write queued half-way through the flusher's wait for the hung one
        await anyio.sleep(0.1)
        queued_at = anyio.current_time()
        with anyio.fail_after(5), pytest.raises(CommitTimeout):
            await commits.submit("queued")  # its own deadline, while "late" still hangs
        assert anyio.current_time() - queued_at >= 0.2  # never released before its own deadline
        assert written == []
        release.set()
        with anyio.fail_after(10):
            assert await commits.submit("next") == "next"
        tg.cancel_scope.cancel()
    assert written == ["late", "queued", "next"]


async def test_a_stopped_flusher_finishes_its_write_and_fails_what_is_still_queued() -> None:
    entered, release = threading.Event(), threading.Event()
    written: list[list[str]] = []

    def slow_commit(items: list[str]) -> list[str]:
        entered.set()
        release.wait(10)
        written.append(list(items))
        return items

    commits: GroupCommit[str, str] = GroupCommit("test", slow_commit)
    flusher = anyio.CancelScope()

    async def run_flusher() -> None:
        with flusher:
            await commits.run_flusher()

    async with anyio.create_task_group() as tg:
        tg.start_soon(run_flusher)
        first = commits.enqueue("first")
        await anyio.to_thread.run_sync(entered.wait, 5)
        second = commits.enqueue("second")
        stopping_when_released: list[tuple[str, bool]] = []
        first.when_released(lambda: stopping_when_released.append(("first", commits.stopping)))
        second.when_released(lambda: stopping_when_released.append(("second", commits.stopping)))
        flusher.cancel()
        release.set()
        with anyio.fail_after(5):
            await second.done.wait()
        assert first.done.is_set() and first.result() == "first"  # the started write was finished
        # a release callback tells the write finished from the batch a stopping flusher fails unwritten
        assert stopping_when_released == [("first", False), ("second", True)]
        with pytest.raises(CommitFailed, match="stopped"):
            second.result()
    assert written == [["first"]]


async def test_release_callbacks_run_once_when_a_batch_is_written_or_past_its_deadline() -> None:
    """``Ticket.when_released``: called once by the flusher when the batch is written (``done``), or at its deadline
    while the write hangs (``done`` not set: outcome unknown), at once for a batch already released; a callback
    that raises is logged and the flusher goes on."""
    release = threading.Event()

    def commit(items: list[str]) -> list[str]:
        if "slow" in items:
            release.wait(10)
        return [item.upper() for item in items]

    commits: GroupCommit[str, str] = GroupCommit("test", commit, timeout=0.2)
    heard: list[tuple[str, bool]] = []
    async with anyio.create_task_group() as tg:
        await tg.start(commits.run_flusher)
        first, second = commits.enqueue("a"), commits.enqueue("b")
        assert not first.released
        both_heard = anyio.Event()

        def failing() -> None:
            raise RuntimeError("a caller's bug")

        first.when_released(failing)
        first.when_released(lambda: heard.append(("a", first.done.is_set())))

        def second_released() -> None:
            heard.append(("b", second.done.is_set()))
            both_heard.set()

        second.when_released(second_released)
        with anyio.fail_after(5):
            await both_heard.wait()
        assert heard == [("a", True), ("b", True)] and first.released
        first.when_released(lambda: heard.append(("a again", first.done.is_set())))  # already released: at once
        assert heard[-1] == ("a again", True)

        slow = commits.enqueue("slow")
        at_deadline = anyio.Event()

        def slow_released() -> None:
            heard.append(("slow", slow.done.is_set()))
            at_deadline.set()

        slow.when_released(slow_released)
        with anyio.fail_after(5):
            await at_deadline.wait()
        assert heard[-1] == ("slow", False) and slow.released  # released at its deadline, not written yet
        release.set()
        with anyio.fail_after(5):
            await slow.done.wait()
        assert slow.result() == "SLOW" and heard[-1] == ("slow", False)  # not called a second time
        tg.cancel_scope.cancel()
