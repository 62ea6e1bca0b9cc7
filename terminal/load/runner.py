"""Running a load: many signed-on terminals, open-loop, against a pipeline's NAC (started by the caller).

Request *i* goes to terminal ``i % terminals``; a terminal does one transaction at a time (as a real POS),
so when the system is slower than the offered rate, requests queue at their terminal and their latency —
always measured from the due time — shows it. The run ends at its duration: requests still queued then are
counted as not sent (the backlog), never silently dropped from the figures.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

import anyio

from acqkit.config import AcqsimConfig, Endpoint, TerminalFixture
from terminal.load.schedule import Mix, OpenLoopSchedule
from terminal.load.stats import NO_ANSWER, LoadStats
from terminal.pos import PosTerminal

LOAD_TERMINAL_PREFIX: Final = "2"
#: How long a load terminal waits for one answer.
LOAD_ANSWER_TIMEOUT_S: Final = 5.0
PROGRESS_EVERY_S: Final = 1.0


def with_load_terminals(config: AcqsimConfig, count: int) -> AcqsimConfig:
    """The configuration plus ``count`` load terminals ``2xxxxxxx`` at the first merchant, sharing its TMK."""
    first = config.terminals[0]
    extra = tuple(
        TerminalFixture(
            terminal_id=f"{LOAD_TERMINAL_PREFIX}{i:07d}",
            merchant_id=first.merchant_id,
            tmk=first.tmk,
            app_type=first.app_type,
            route=first.route,
        )
        for i in range(1, count + 1)
    )
    return dataclasses.replace(config, terminals=config.terminals + extra)


async def run_load(
    config: AcqsimConfig,
    *,
    terminals: int,
    schedule: OpenLoopSchedule,
    mix: Mix,
    against: Endpoint,
    progress: Callable[[LoadStats, float], None] | None = None,
    seed: int = 0,
    keep_alive: bool = False,
) -> tuple[LoadStats, float]:
    config = with_load_terminals(config, terminals)
    card = config.cards[0]
    stats = LoadStats()
    kinds = mix.plan(schedule.count, seed)
    with tempfile.TemporaryDirectory(prefix="acqsim-load-") as state_dir:
        poses = [
            PosTerminal(
                config,
                f"{LOAD_TERMINAL_PREFIX}{i:07d}",
                nac=against,
                state_dir=Path(state_dir),
                timeout=LOAD_ANSWER_TIMEOUT_S,
                persist=False,
                keep_alive=keep_alive,
            )
            for i in range(1, terminals + 1)
        ]
        async with anyio.create_task_group() as tg:
            for pos in poses:
                tg.start_soon(pos.sign_on)
        start = anyio.current_time() + 0.05
        wall_start = time.perf_counter()

        async def terminal_worker(index: int, pos: PosTerminal) -> None:
            end = start + schedule.duration
            for i in range(index, schedule.count, terminals):
                due = start + schedule.due(i)
                await anyio.sleep_until(due)
                if anyio.current_time() > end:
                    stats.not_sent += 1  # the run is over: what is still queued is counted, not sent
                    continue
                stats.sent += 1
                kind = kinds[i]
                amount = 0 if kind == "balance" else 100
                outcome = await pos.financial(kind, card, amount=amount, pin=card.pin)
                code = NO_ANSWER if outcome is None else outcome.response_code
                stats.record(due - start, anyio.current_time() - due, code)

        async def report() -> None:
            while True:
                await anyio.sleep(PROGRESS_EVERY_S)
                if progress is not None:
                    progress(stats, time.perf_counter() - wall_start)

        async with anyio.create_task_group() as tg:
            reporter = anyio.CancelScope()

            async def reporting() -> None:
                with reporter:
                    await report()

            tg.start_soon(reporting)
            async with anyio.create_task_group() as workers:
                for index, pos in enumerate(poses):
                    workers.start_soon(terminal_worker, index, pos)
            reporter.cancel()
        elapsed = time.perf_counter() - wall_start
        for pos in poses:
            await pos.close()
    return stats, elapsed


PROGRESS_BAR_WIDTH: Final = 20


def progress_text(stats: LoadStats, elapsed: float, duration: float) -> str:
    """``[#####.....]  3.0 s  1234 done  411.3/s  errors 0  p50 … p99 …``: the run so far, for a live line."""
    filled = min(round(PROGRESS_BAR_WIDTH * elapsed / duration), PROGRESS_BAR_WIDTH) if duration > 0 else 0
    bar = "#" * filled + "." * (PROGRESS_BAR_WIDTH - filled)
    errors = stats.completed - stats.codes.get("00", 0)
    rate = stats.completed / elapsed if elapsed else 0.0
    p50 = stats.percentile_ms(50) if stats.completed else math.nan
    p99 = stats.percentile_ms(99) if stats.completed else math.nan
    return (
        f"[{bar}] {elapsed:6.1f} s  {stats.completed:>8} done  {rate:8.1f}/s  errors {errors:>6}  "
        f"p50 {p50:7.2f} ms  p99 {p99:7.2f} ms"
    )


def progress_line(duration: float) -> Callable[[LoadStats, float], None]:
    """A progress callback that rewrites one line on stderr (only when stderr is a terminal)."""

    def show(stats: LoadStats, elapsed: float) -> None:
        if sys.stderr.isatty():
            sys.stderr.write("\r" + progress_text(stats, elapsed, duration) + " ")
            sys.stderr.flush()

    return show
