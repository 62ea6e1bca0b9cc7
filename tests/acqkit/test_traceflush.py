"""A batched trace: records kept on the event loop, written in batches by a worker thread, and every record
written once the flusher stops."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from acqkit.traceflush import flush_traces
from wire.trace import TraceWriter

pytestmark = pytest.mark.anyio
STEP_TIMEOUT_S = 10.0


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def record(trace: TraceWriter, note: str) -> None:
    trace.record(direction="in", link="hsm", peer="hsm", payload=b"0001M901", note=note)


def test_a_batched_trace_writes_nothing_until_flushed_and_keeps_each_records_time(tmp_path: Path) -> None:
    trace = TraceWriter(tmp_path, "frontend", batched=True)
    for note in ("first", "second"):
        record(trace, note)
    path = tmp_path / "frontend.jsonl"
    assert path.read_text(encoding="utf-8") == "" and trace.pending == 2
    assert trace.flush_pending() == 2 and trace.pending == 0
    written = lines(path)
    assert [r["note"] for r in written] == ["first", "second"]
    assert str(written[0]["time"]) <= str(written[1]["time"])
    record(trace, "left at close")
    trace.close()
    assert [r["note"] for r in lines(path)][-1] == "left at close"


async def test_the_flusher_writes_in_the_background_and_once_more_when_stopped(tmp_path: Path) -> None:
    trace = TraceWriter(tmp_path, "frontend", batched=True)
    path = tmp_path / "frontend.jsonl"
    async with anyio.create_task_group() as tg:
        await tg.start(flush_traces, trace)
        record(trace, "while running")
        with anyio.fail_after(STEP_TIMEOUT_S):
            while trace.pending:  # noqa: ASYNC110 - the flusher has no event of its own to wait for
                await anyio.sleep(0.01)
        assert [r["note"] for r in lines(path)] == ["while running"]
        record(trace, "just before the stop")
        tg.cancel_scope.cancel()
    assert [r["note"] for r in lines(path)] == ["while running", "just before the stop"]
    trace.close()
