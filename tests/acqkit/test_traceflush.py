"""A trace keeps records on the event loop and writes them in batches from a worker thread; every record is
written once the flusher stops; a full queue drops new records and counts them (log and metric)."""

from __future__ import annotations

import logging
from pathlib import Path

import anyio
import pytest

from acqkit.metrics import TRACE_RECORDS_DROPPED
from acqkit.traceflush import flush_traces
from wire.trace import TraceWriter, read_trace

pytestmark = pytest.mark.anyio
STEP_TIMEOUT_S = 10.0


def notes(path: Path) -> list[object]:
    return [r["note"] for r in read_trace(path)]


def record(trace: TraceWriter, note: str) -> None:
    trace.record(direction="in", link="hsm", peer="hsm", payload=b"0001M901", note=note)


def test_a_trace_writes_nothing_until_flushed_and_keeps_each_records_time(tmp_path: Path) -> None:
    trace = TraceWriter(tmp_path, "frontend")
    for note in ("first", "second"):
        record(trace, note)
    path = tmp_path / "frontend.jsonl"
    assert path.read_text(encoding="utf-8") == "" and trace.pending == 2
    assert trace.flush_pending() == 2 and trace.pending == 0
    written = read_trace(path)
    assert [r["note"] for r in written] == ["first", "second"]
    assert str(written[0]["time"]) <= str(written[1]["time"])
    record(trace, "left at close")
    trace.close()
    assert notes(path)[-1] == "left at close"


async def test_the_flusher_writes_in_the_background_and_once_more_when_stopped(tmp_path: Path) -> None:
    trace = TraceWriter(tmp_path, "frontend")
    path = tmp_path / "frontend.jsonl"
    async with anyio.create_task_group() as tg:
        await tg.start(flush_traces, trace)
        record(trace, "while running")
        with anyio.fail_after(STEP_TIMEOUT_S):
            while trace.pending:  # noqa: ASYNC110 - the flusher has no event of its own to wait for
                await anyio.sleep(0.01)
        assert notes(path) == ["while running"]
        record(trace, "just before the stop")
        tg.cancel_scope.cancel()
    assert notes(path) == ["while running", "just before the stop"]
    trace.close()


async def test_a_full_queue_drops_new_records_and_counts_them(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    trace = TraceWriter(tmp_path, "drop-test")
    trace.max_pending = 3
    counted = TRACE_RECORDS_DROPPED.labels(service="drop-test")
    before = counted._value.get()
    for number in range(5):
        record(trace, f"record {number}")
    assert trace.pending == 3 and trace.dropped == 2  # the payment path never waits for the writer
    with caplog.at_level(logging.WARNING, logger="acqsim.trace"):
        async with anyio.create_task_group() as tg:
            await tg.start(flush_traces, trace)
            tg.cancel_scope.cancel()
    assert counted._value.get() - before == 2
    assert "trace for drop-test fell behind: 2 records dropped" in caplog.text
    trace.close()
    assert notes(tmp_path / "drop-test.jsonl") == ["record 0", "record 1", "record 2"]
