"""Traces written in batches, off the event loop: a task that hands a batched
:class:`~wire.trace.TraceWriter`'s kept records to a worker thread every ``TRACE_FLUSH_S``, and once more when
it is cancelled (so a service that stops leaves every record it took written)."""

from __future__ import annotations

from typing import Final

import anyio
import anyio.abc

from acqkit.dedicated import DedicatedThread
from wire.trace import TraceWriter

#: How long a traced record may wait to be written (what a reader of a live trace may lag behind by).
TRACE_FLUSH_S: Final = 0.05
#: How long the last flush of a stopping service may take.
LAST_FLUSH_TIMEOUT_S: Final = 5.0


async def flush_traces(
    trace: TraceWriter, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
) -> None:
    task_status.started()
    writer = DedicatedThread(f"{trace.service}-trace")  # a fraction of to_thread's cost per hand-over
    try:
        while True:
            await anyio.sleep(TRACE_FLUSH_S)
            if trace.pending:
                await writer.run(trace.flush_pending)
    finally:
        with anyio.move_on_after(LAST_FLUSH_TIMEOUT_S, shield=True):
            await writer.run(trace.flush_pending)
        writer.stop()
