"""Operations per second, measured the one way every benchmark here counts them: as many as fit in a fixed time."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import anyio


def op_rate(operation: Callable[[], object], seconds: float) -> float:
    """Calls of ``operation`` per second, called back to back for ``seconds``."""
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        operation()
        count += 1
    return count / (time.perf_counter() - start)


async def closed_loop_rate(concurrency: int, call: Callable[[], Awaitable[None]], seconds: float) -> float:
    """Completed ``call``s per second, ``concurrency`` callers each awaiting one call after another (closed loop)
    until ``seconds`` have passed; a call under way then is finished and counted."""
    count = 0
    deadline = time.perf_counter() + seconds

    async def caller() -> None:
        nonlocal count
        while time.perf_counter() < deadline:
            await call()
            count += 1

    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(concurrency):
            tg.start_soon(caller)
    return count / (time.perf_counter() - start)
