"""The PIN-try limit holds under concurrency: 40 wrong PINs for one card at the same moment, on 40 connections,
reach the HSM at most MAX_PIN_FAILURES_PER_DAY times; the right PIN afterwards is refused with 75. Tried
straight at the front-end's port and through the NAC, over real TCP with the real HSM and ledger."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from acqkit.config import AcqsimConfig
from acqsim.pipeline import running_pipeline
from frontend.core import MAX_PIN_FAILURES_PER_DAY
from terminal.load.runner import LOAD_TERMINAL_PREFIX, with_load_terminals
from terminal.pos import PosTerminal
from wire.trace import read_trace

pytestmark = pytest.mark.anyio
TERMINALS = 40


def dc_commands(trace_dir: Path) -> int:
    """DC commands the HSM received, from its own trace."""
    records = read_trace(trace_dir / "hsm.jsonl")
    return sum(1 for r in records if r["direction"] == "in" and r["message"].get("code") == "DC")


@pytest.mark.parametrize("hop", ["frontend", "nac"])
async def test_forty_wrong_pins_at_once_then_the_right_one_gets_75(tmp_path: Path, hop: str) -> None:
    config = with_load_terminals(AcqsimConfig.default(data_dir=tmp_path), TERMINALS)
    card = config.card("6200001000000011")
    async with running_pipeline(config, trace=True) as pipeline:
        target = pipeline.frontend if hop == "frontend" else pipeline.nac
        ids = [f"{LOAD_TERMINAL_PREFIX}{i:07d}" for i in range(1, TERMINALS + 1)]
        poses = [PosTerminal(config, t, nac=target, state_dir=tmp_path / "pos", persist=False, timeout=20) for t in ids]
        async with anyio.create_task_group() as tg:
            for pos in poses:
                tg.start_soon(pos.sign_on)
        codes: list[str] = []
        start = anyio.Event()

        async def wrong_pin(pos: PosTerminal) -> None:
            await start.wait()
            outcome = await pos.financial("purchase", card, amount=100, pin="000000")
            codes.append("none" if outcome is None else outcome.response_code)

        async with anyio.create_task_group() as tg:
            for pos in poses:
                tg.start_soon(wrong_pin, pos)
            await anyio.wait_all_tasks_blocked()
            start.set()  # all 40 at the same moment
        right = await poses[0].financial("purchase", card, amount=100, pin=card.pin)
        for pos in poses:
            await pos.close()
    assert len(codes) == TERMINALS and set(codes) <= {"55", "75"}, codes
    assert codes.count("55") <= MAX_PIN_FAILURES_PER_DAY - 1
    assert 1 <= dc_commands(config.trace_dir) <= MAX_PIN_FAILURES_PER_DAY
    assert right is not None and right.response_code == "75"
