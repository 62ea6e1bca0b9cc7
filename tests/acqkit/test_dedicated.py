"""A worker thread of one's own: calls run in that one thread, in order; results and exceptions come back to the
caller; a cancelled caller still waits for its call; the thread ends on stop and starts again when used."""

from __future__ import annotations

import threading

import anyio
import pytest

from acqkit.dedicated import DedicatedThread

pytestmark = pytest.mark.anyio


def _whoami(tag: int) -> tuple[int, threading.Thread]:
    return tag, threading.current_thread()


async def test_calls_run_in_order_in_one_thread_other_than_the_loops() -> None:
    worker = DedicatedThread("test-worker")
    try:
        results = [await worker.run(_whoami, tag) for tag in range(20)]
    finally:
        worker.stop()
    assert [tag for tag, _ in results] == list(range(20))
    threads = {ident for _, ident in results}
    assert len(threads) == 1 and threading.current_thread() not in threads


async def test_an_exception_in_the_thread_is_raised_to_the_caller() -> None:
    worker = DedicatedThread("test-worker")

    def fail() -> None:
        raise OSError("disk full")

    try:
        with pytest.raises(OSError, match="disk full"):
            await worker.run(fail)
        assert (await worker.run(_whoami, 7))[0] == 7  # still serving
    finally:
        worker.stop()


async def test_a_cancelled_caller_waits_for_the_call_it_handed_over() -> None:
    worker = DedicatedThread("test-worker")
    started, release, finished = threading.Event(), threading.Event(), threading.Event()

    def slow() -> None:
        started.set()
        release.wait(10)
        finished.set()

    try:
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(worker.run, slow)
                await anyio.to_thread.run_sync(started.wait, 10)
                scope.cancel()  # the caller is cancelled while its call runs ...
                release.set()
        assert finished.is_set()  # ... and was only released once the call was done
    finally:
        worker.stop()


async def test_a_stopped_thread_ends_and_a_new_one_serves_later_calls() -> None:
    worker = DedicatedThread("test-worker")
    _, first = await worker.run(_whoami, 1)
    worker.stop()
    await anyio.to_thread.run_sync(first.join, 10)
    assert not first.is_alive()
    try:
        _, second = await worker.run(_whoami, 2)
        assert second is not first and second.is_alive()
    finally:
        worker.stop()
