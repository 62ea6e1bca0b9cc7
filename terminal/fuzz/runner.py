"""Run the fuzzer against a POS-link host while a well-behaved terminal transacts beside it.

Fuzz workers each send one mutant per connection and read until an answer, a close or
``FUZZ_ANSWER_TIMEOUT_S``; the good terminal (PosTerminal with its TEST TMK) signs on and buys every
``GOOD_PURCHASE_EVERY_S``. A crash is the host no longer accepting connections; a hang is a good request left
unanswered within the terminal's deadline.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import tempfile
from collections import Counter
from pathlib import Path
from typing import Final

import anyio

from acqkit.config import AcqsimConfig, Endpoint
from terminal.fuzz.mutators import Mutant, MutationEngine
from terminal.fuzz.seeds import seed_payloads
from terminal.pos import PosTerminal
from terminal.session import TerminalError
from wire.codec import decode_pos_body
from wire.errors import WireError
from wire.framing import END_OF_STREAM, NEED_DATA, LengthPrefixFramer
from wire.posframe import PosFrame

log = logging.getLogger("acqsim.fuzz")

#: How long a fuzz connection waits for an answer before counting the mutant as unanswered.
FUZZ_ANSWER_TIMEOUT_S: Final = 2.0
#: How long opening a fuzz connection may take before the host counts as no longer accepting.
CONNECT_TIMEOUT_S: Final = 5.0
#: Pacing of the good terminal's purchases (not synchronisation).
GOOD_PURCHASE_EVERY_S: Final = 0.05
#: Deadline of each good request (a request unanswered within it is a hang).
GOOD_ANSWER_TIMEOUT_S: Final = 10.0
#: Amount of each good purchase, minor units.
GOOD_AMOUNT: Final = 100
READ_CHUNK: Final = 4096


@dataclasses.dataclass(slots=True)
class GoodPurchase:
    stan: str
    answered: bool
    approved: bool
    rrn: str = ""
    response_code: str = ""


@dataclasses.dataclass(slots=True)
class FuzzReport:
    target: str
    seed: int
    frames_sent: int = 0
    answers: Counter[str] = dataclasses.field(default_factory=Counter)  # response code (39) → count
    closed: int = 0  # the host closed without answering
    unanswered: int = 0  # no answer and no close within FUZZ_ANSWER_TIMEOUT_S
    abandoned: int = 0  # we closed mid-frame on purpose
    by_mutator: Counter[str] = dataclasses.field(default_factory=Counter)
    crashes: list[str] = dataclasses.field(default_factory=list)
    good: list[GoodPurchase] = dataclasses.field(default_factory=list)
    good_signed_on: bool = False
    ledger_problems: list[str] = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    @property
    def hangs(self) -> int:
        return sum(1 for p in self.good if not p.answered)

    @property
    def good_lost(self) -> int:
        """Good purchases not approved (with a funded card and good PIN each must be), plus ledger problems."""
        return sum(1 for p in self.good if not p.approved) + len(self.ledger_problems)

    @property
    def clean(self) -> bool:
        return not self.crashes and self.good_signed_on and self.good_lost == 0 and bool(self.good)

    def to_json(self) -> dict[str, object]:
        return {
            "target": self.target,
            "seed": self.seed,
            "frames_sent": self.frames_sent,
            "answers_by_code": dict(sorted(self.answers.items())),
            "closed": self.closed,
            "unanswered": self.unanswered,
            "abandoned": self.abandoned,
            "by_mutator": dict(sorted(self.by_mutator.items())),
            "crashes": self.crashes,
            "hangs": self.hangs,
            "good_signed_on": self.good_signed_on,
            "good_purchases": len(self.good),
            "good_approved": sum(1 for p in self.good if p.approved),
            "good_lost": self.good_lost,
            "ledger_problems": self.ledger_problems,
            "seconds": round(self.seconds, 2),
            "clean": self.clean,
        }


def _answer_code(payload: bytes) -> str:
    try:
        return decode_pos_body(PosFrame.parse(payload).body).get("39", "no-39")
    except WireError:
        return "undecodable"


async def _send_one(target: Endpoint, mutant: Mutant, report: FuzzReport, answer_timeout: float) -> None:
    """One mutant on its own connection; raises OSError/TimeoutError if the host does not accept."""
    with anyio.fail_after(CONNECT_TIMEOUT_S):
        stream = await anyio.connect_tcp(target.host, target.port)
    async with stream:
        report.frames_sent += 1
        report.by_mutator[mutant.mutator] += 1
        try:
            await stream.send(mutant.data)
        except (anyio.BrokenResourceError, OSError):
            report.closed += 1
            return
        if mutant.abandon:
            report.abandoned += 1
            return
        framer = LengthPrefixFramer()
        with anyio.move_on_after(answer_timeout):
            while True:
                try:
                    data = await stream.receive(READ_CHUNK)
                except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                    report.closed += 1
                    return
                framer.receive_data(data)
                got = framer.next_frame()
                if got is NEED_DATA:
                    continue
                if got is END_OF_STREAM or not isinstance(got, bytes):
                    report.answers["bad-framing"] += 1
                    return
                report.answers[_answer_code(got)] += 1
                return
        report.unanswered += 1


async def _fuzz_worker(
    target: Endpoint, engine: MutationEngine, budget: list[int], report: FuzzReport, answer_timeout: float
) -> None:
    while budget[0] > 0 and not report.crashes:
        budget[0] -= 1
        mutant = engine.next()
        try:
            await _send_one(target, mutant, report, answer_timeout)
        except (OSError, TimeoutError) as exc:
            report.crashes.append(f"{target} stopped accepting after {report.frames_sent} frames: {exc!r}")


async def _good_terminal(
    config: AcqsimConfig, terminal_id: str, target: Endpoint, report: FuzzReport, done: anyio.Event, state: Path
) -> None:
    card = config.cards[0]
    async with PosTerminal(
        config, terminal_id, nac=target, state_dir=state, timeout=GOOD_ANSWER_TIMEOUT_S, persist=False
    ) as pos:
        signed = await pos.sign_on()
        report.good_signed_on = signed is not None and signed.approved
        if not report.good_signed_on:
            return
        while True:
            try:
                outcome = await pos.financial("purchase", card, amount=GOOD_AMOUNT, pin=card.pin)
            except TerminalError as exc:  # the host refused a new sign-on: that purchase is lost
                report.good.append(GoodPurchase(stan="", answered=False, approved=False, response_code=str(exc)))
                if done.is_set():
                    return
                await anyio.sleep(GOOD_PURCHASE_EVERY_S)  # pacing
                continue
            stan = f"{pos.session.state.stan:06d}"
            report.good.append(
                GoodPurchase(
                    stan=stan,
                    answered=outcome is not None,
                    approved=outcome is not None and outcome.approved,
                    rrn=outcome.fields.get("37", "") if outcome else "",
                    response_code=outcome.response_code if outcome else "",
                )
            )
            if done.is_set():
                return
            await anyio.sleep(GOOD_PURCHASE_EVERY_S)  # pacing


async def run_fuzz(
    config: AcqsimConfig,
    target: Endpoint,
    *,
    frames: int,
    seed: int,
    connections: int = 4,
    good_terminal: str | None = None,
    fuzz_terminal: str | None = None,
    answer_timeout: float = FUZZ_ANSWER_TIMEOUT_S,
) -> FuzzReport:
    """Send ``frames`` mutants over ``connections`` concurrent connections beside one good terminal."""
    good_id = good_terminal or config.terminals[0].terminal_id
    fuzz_id = fuzz_terminal or config.terminals[-1].terminal_id
    engine = MutationEngine(seed_payloads(config, fuzz_id, random.Random(seed)), seed)
    report = FuzzReport(target=str(target), seed=seed)
    budget = [frames]
    done = anyio.Event()
    started = anyio.current_time()
    with tempfile.TemporaryDirectory(prefix="acqsim-fuzz-") as state:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_good_terminal, config, good_id, target, report, done, Path(state))
            async with anyio.create_task_group() as fuzzers:
                for _ in range(connections):
                    fuzzers.start_soon(_fuzz_worker, target, engine, budget, report, answer_timeout)
            done.set()
    report.seconds = anyio.current_time() - started
    return report
