"""Running a load: many signed-on terminals, open-loop, against a pipeline's NAC (started by the caller).

Request *i* goes to terminal ``i % terminals``; a terminal does one transaction at a time (as a real POS),
so when the system is slower than the offered rate, requests queue at their terminal and their latency —
always measured from the due time — shows it. The run ends at its duration: requests still queued then are
counted as not sent (the backlog), never silently dropped from the figures.

Both ways to connect run on the pipelined engine of ``engine.py`` (sans-IO sessions, request templates, one
scheduler): a short connection per exchange (the default, as dial-up and GPRS terminals do: a task per
exchange connects, sends, reads the answer and closes), or kept-open connections (``keep_alive``) — one per
terminal unless ``connections`` says fewer.

Cards: request *i* uses card ``i % cards`` (``spread="request"``) or terminal *t* always card ``t % cards``
(``spread="terminal"``). ``with_load_cards`` adds ``count`` deterministic TEST cards to a configuration.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Callable
from typing import Final

from acqkit.config import AcqsimConfig, CardFixture, Endpoint, TerminalFixture
from terminal.cards import luhn_check_digit
from terminal.load.engine import EngineOptions, LoadEngine
from terminal.load.schedule import Mix, OpenLoopSchedule
from terminal.load.stats import LoadStats
from terminal.session import TerminalSession
from terminal.state import TerminalState
from wire.paycrypto import visa_pvv

LOAD_TERMINAL_PREFIX: Final = "2"
#: How long a load terminal waits for one answer.
LOAD_ANSWER_TIMEOUT_S: Final = 5.0


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
    short_calls_by_callbacks: bool = True,
) -> tuple[LoadStats, float]:
    config = with_load_terminals(config, terminals)
    engine = LoadEngine(
        load_sessions(config, terminals),
        EngineOptions(
            schedule=schedule,
            mix=mix,
            cards=cards or (config.cards[0],),
            spread=spread,
            connections=connections or terminals,
            keep_alive=keep_alive,
            answer_timeout=LOAD_ANSWER_TIMEOUT_S,
            seed=seed,
            short_calls_by_callbacks=short_calls_by_callbacks,
        ),
    )
    elapsed = await engine.run(against, progress)
    return engine.stats, elapsed


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
