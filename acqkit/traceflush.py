"""Traces written in batches, off the event loop — the one way every service writes its trace: a task that hands
a trace's kept records to a worker thread of its own every ``TRACE_FLUSH_S`` (the thread compacts and writes
them: ``wire/trace.py``), and once more when it is cancelled (so a service that stops leaves every record it
took written). It also reports the records the trace dropped when its queue was full (the writer fell behind)
as ``acqsim_trace_records_dropped_total{service}`` and in the log."""

from __future__ import annotations

import logging
import time
from typing import Final, Protocol

import anyio
import anyio.abc

from acqkit.dedicated import DedicatedThread
from acqkit.metrics import TRACE_RECORDS_DROPPED

log = logging.getLogger("acqsim.trace")

#: How long a traced record may wait to be written (what a reader of a live trace may lag behind by).
TRACE_FLUSH_S: Final = 0.05
#: How long the last flush of a stopping service may take.
LAST_FLUSH_TIMEOUT_S: Final = 5.0
#: Dropped records are logged at most this often (the metric counts every one).
DROP_LOG_INTERVAL_S: Final = 10.0


class BatchedTrace(Protocol):
    """What the flusher needs of a trace (``wire.trace.TraceWriter``)."""

    @property
    def service(self) -> str: ...

    @property
    def pending(self) -> int: ...

    @property
    def dropped(self) -> int: ...

    def flush_pending(self) -> int: ...


class _DropReport:
    """Turns the trace's running count of dropped records into the metric and a log line now and then."""

    def __init__(self, trace: BatchedTrace) -> None:
        self.trace, self.reported, self.logged_at = trace, 0, -DROP_LOG_INTERVAL_S
        self.counter = TRACE_RECORDS_DROPPED.labels(service=trace.service)

    def update(self) -> None:
        dropped = self.trace.dropped
        if dropped == self.reported:
            return
        self.counter.inc(dropped - self.reported)
        self.reported = dropped
        now = time.monotonic()
        if now - self.logged_at >= DROP_LOG_INTERVAL_S:
            self.logged_at = now
            log.warning("trace for %s fell behind: %d records dropped so far", self.trace.service, dropped)


async def flush_traces(
    trace: BatchedTrace, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
) -> None:
    task_status.started()
    writer = DedicatedThread(f"{trace.service}-trace")  # a fraction of to_thread's cost per hand-over
    drops = _DropReport(trace)
    try:
        while True:
            await anyio.sleep(TRACE_FLUSH_S)
            if trace.pending:
                await writer.run(trace.flush_pending)
            drops.update()
    finally:
        with anyio.move_on_after(LAST_FLUSH_TIMEOUT_S, shield=True):
            await writer.run(trace.flush_pending)
        drops.update()
        writer.stop()
