"""Running a load: many signed-on terminals, open-loop, against a pipeline's NAC (started by the caller).

Request *i* goes to terminal ``i % terminals``; a terminal does one transaction at a time (as a real POS),
so when the system is slower than the offered rate, requests queue at their terminal and their latency —
always measured from the due time — shows it. The run ends at its duration: requests still queued then are
counted as not sent (the backlog), never silently dropped from the figures.

Two ways to connect: a short connection per transaction (the default: a task per terminal, each exchange a
new TCP connection, as dial-up and GPRS terminals do), or kept-open connections (``keep_alive``), run by the
pipelined engine of ``engine.py`` — one connection per terminal unless ``connections`` says fewer.

Cards: request *i* uses card ``i % cards`` (``spread="request"``) or terminal *t* always card ``t % cards``
(``spread="terminal"``). ``with_load_cards`` adds ``count`` deterministic TEST cards to a configuration.
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

from acqkit.config import AcqsimConfig, CardFixture, Endpoint, TerminalFixture
from terminal.cards import luhn_check_digit
from terminal.load.engine import EngineOptions, LoadEngine
from terminal.load.schedule import Mix, OpenLoopSchedule
from terminal.load.stats import NO_ANSWER, LoadStats
from terminal.pos import PosTerminal
from terminal.session import TerminalSession
from terminal.state import TerminalState
from wire.paycrypto import visa_pvv

LOAD_TERMINAL_PREFIX: Final = "2"
#: How long a load terminal waits for one answer.
LOAD_ANSWER_TIMEOUT_S: Final = 5.0
PROGRESS_EVERY_S: Final = 1.0


#: The load cards' BIN and PAN length; the PAN body after the BIN is ``9`` and the card's index.
LOAD_CARD_BIN: Final = "620000"
LOAD_CARD_BALANCE: Final = 1_000_000_000_00  # fen: a billion yuan, enough for any run
LOAD_CARD_EXPIRY: Final = "3012"
MAX_LOAD_CARDS: Final = 1_000_000


def load_cards(config: AcqsimConfig, count: int) -> tuple[CardFixture, ...]:
    """``count`` TEST cards, the same for the same ``count`` and PVK on every run: PAN ``6200009…`` with the
    card's index and a Luhn digit, a PIN derived from the index, its Visa PVV under the configured PVK, and a
    balance no run exhausts. The first configured card when ``count`` is 1 (the default)."""
    if count == 1:
        return (config.cards[0],)
    if not 1 <= count <= MAX_LOAD_CARDS:
        raise ValueError(f"load cards: 1..{MAX_LOAD_CARDS}, not {count}")
    pvk = bytes.fromhex(config.pvk)
    made = []
    for index in range(count):
        body = f"{LOAD_CARD_BIN}9{index:08d}"
        pan = body + luhn_check_digit(body)
        pin = f"{(index * 7_919 + 123_456) % 1_000_000:06d}"
        made.append(
            CardFixture(
                pan=pan,
                expiry=LOAD_CARD_EXPIRY,
                pin=pin,
                pvv=visa_pvv(pvk, pan, "1", pin),
                pvki="1",
                balance=LOAD_CARD_BALANCE,
                holder="TEST LOAD CARD",
                note="acqsim load --cards",
            )
        )
    return tuple(made)


def with_load_cards(config: AcqsimConfig, cards: tuple[CardFixture, ...]) -> AcqsimConfig:
    """The configuration plus the load cards it does not hold yet (a pipeline opens their accounts)."""
    known = {card.pan for card in config.cards}
    return dataclasses.replace(config, cards=config.cards + tuple(c for c in cards if c.pan not in known))


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
    connections: int | None = None,
    cards: tuple[CardFixture, ...] | None = None,
    spread: str = "request",
) -> tuple[LoadStats, float]:
    config = with_load_terminals(config, terminals)
    cards = cards or (config.cards[0],)
    if keep_alive:
        return await _run_pipelined(
            config, terminals, schedule, mix, against, progress, seed, connections or terminals, cards, spread
        )
    stats = LoadStats()
    kinds = mix.kinds(seed)
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
        for pos in poses:
            pos.session.keep_batch = False  # a long run would otherwise remember every approval
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
                kind = next(kinds)
                card = cards[(i if spread == "request" else index) % len(cards)]
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


def load_sessions(config: AcqsimConfig, terminals: int) -> list[TerminalSession]:
    """Fresh in-memory sessions of load terminals ``2000001``… (configured by :func:`with_load_terminals`),
    keeping no batch."""
    fixtures = {fixture.terminal_id: fixture for fixture in config.terminals}  # one pass, not one per terminal
    sessions = []
    for i in range(1, terminals + 1):
        fixture = fixtures[f"{LOAD_TERMINAL_PREFIX}{i:07d}"]
        state = TerminalState(terminal_id=fixture.terminal_id, merchant_id=fixture.merchant_id)
        sessions.append(
            TerminalSession(
                state, bytes.fromhex(fixture.tmk), app_type=fixture.app_type, route=fixture.route, keep_batch=False
            )
        )
    return sessions


async def _run_pipelined(
    config: AcqsimConfig,
    terminals: int,
    schedule: OpenLoopSchedule,
    mix: Mix,
    against: Endpoint,
    progress: Callable[[LoadStats, float], None] | None,
    seed: int,
    connections: int,
    cards: tuple[CardFixture, ...],
    spread: str,
) -> tuple[LoadStats, float]:
    engine = LoadEngine(
        load_sessions(config, terminals),
        EngineOptions(
            schedule=schedule,
            mix=mix,
            cards=cards,
            spread=spread,
            connections=connections,
            answer_timeout=LOAD_ANSWER_TIMEOUT_S,
            seed=seed,
        ),
    )
    elapsed = await engine.run(against, progress)
    return engine.stats, elapsed


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
