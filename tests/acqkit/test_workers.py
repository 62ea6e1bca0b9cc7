"""FrameWorkers (acqkit/workers.py): every frame answered once, never more workers than the limit, a worker
kept for the next frame instead of a task per frame, and every worker ended when the reader is done."""

from __future__ import annotations

import anyio
import pytest

from acqkit.workers import FrameWorkers

pytestmark = pytest.mark.anyio

STEP_TIMEOUT_S = 10.0


async def run_reader(frames: list[bytes], limit: int, gate: anyio.Event | None = None) -> tuple[list[bytes], int, int]:
    """Feed ``frames`` to workers as a server's reader does; each worker waits for ``gate`` (when given) before
    it answers. Returns the frames answered, the workers started and the most busy at once."""
    workers = FrameWorkers(limit)
    answered: list[bytes] = []
    started = busy = most_busy = 0

    async def work(frame: bytes | None) -> None:
        nonlocal busy, most_busy
        while frame is not None:
            busy += 1
            most_busy = max(most_busy, busy)
            if gate is not None:
                await gate.wait()
            await anyio.lowlevel.checkpoint()
            answered.append(frame)
            busy -= 1
            frame = await workers.next_frame()

    with anyio.fail_after(STEP_TIMEOUT_S):
        async with anyio.create_task_group() as tg:
            try:
                for frame in frames:
                    if not workers.hand_over(frame):
                        if workers.may_start():
                            started += 1
                            tg.start_soon(work, frame)
                        else:
                            if gate is not None:
                                gate.set()  # all busy: let them finish so that one comes back for a frame
                            await workers.room()
                            assert workers.hand_over(frame)
            finally:
                workers.close()
    return answered, started, most_busy


async def test_every_frame_is_answered_once_by_at_most_limit_workers() -> None:
    frames = [bytes([i]) for i in range(200)]
    answered, started, most_busy = await run_reader(frames, limit=8, gate=anyio.Event())
    assert sorted(answered) == frames
    assert started == 8
    assert most_busy == 8


async def test_a_waiting_worker_takes_the_next_frame_instead_of_a_new_task() -> None:
    """Frames that come one at a time, each after the last was answered, need one worker only."""
    workers = FrameWorkers(4)
    answered: list[bytes] = []
    done = anyio.Event()
    started = 0

    async def work(frame: bytes | None) -> None:
        while frame is not None:
            answered.append(frame)
            if len(answered) == 5:
                done.set()
            frame = await workers.next_frame()

    with anyio.fail_after(STEP_TIMEOUT_S):
        async with anyio.create_task_group() as tg:
            for i in range(5):
                frame = bytes([i])
                if not workers.hand_over(frame):
                    assert workers.may_start()
                    started += 1
                    tg.start_soon(work, frame)
                while len(answered) <= i:  # the worker answers and comes back to wait
                    await anyio.lowlevel.checkpoint()
            await done.wait()
            workers.close()
    assert started == 1
    assert answered == [bytes([i]) for i in range(5)]


async def test_closing_ends_waiting_workers_and_a_closed_pool_gives_no_frame() -> None:
    workers = FrameWorkers(2)
    with anyio.fail_after(STEP_TIMEOUT_S):
        async with anyio.create_task_group() as tg:
            assert workers.may_start()
            tg.start_soon(workers.next_frame)
            await anyio.lowlevel.checkpoint()
            workers.close()  # the task group ends only if the waiting worker was woken with no frame
        assert await workers.next_frame() is None
        assert not workers.hand_over(b"late")
