"""Stand-in advices (docs/scheme.md): what the switch approved in a silent or down issuer's place reaches the
issuer as an 0120 once it is back, from the switch journal until acknowledged, and is posted exactly once."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import anyio
import pytest

from acqsim.cli import main
from acqsim.fourparty import ACQUIRER_ID, DEBIT_B, LOW_B, SchemeCard, World, running_world
from core_ledger.api import LedgerOp, LedgerRequest
from core_ledger.sqlite_store import SqliteStore
from scheme.client import OriginalData, SwitchRequest
from wire.constants import ResponseCode

pytestmark = pytest.mark.anyio
CLOCK = dt.datetime(2026, 12, 4, 9, 30, tzinfo=dt.UTC)


def balance(world: World, card: SchemeCard) -> int:
    store = SqliteStore(world.ledger_b_db)
    try:
        state = store.load()
        return state.accounts[state.cards[card.pan].account_id].balance
    finally:
        store.close()


async def purchase(world: World, amount: int, card: SchemeCard = DEBIT_B) -> tuple[SwitchRequest, str]:
    request = world.request(LedgerOp.PURCHASE, card, amount, pin_block=await world.pin_block(card))
    answer = await world.send(request)
    return request, answer.fields["39"]


async def test_an_issuer_down_then_up_posts_the_stand_in_advice_exactly_once(tmp_path: Path) -> None:
    up = anyio.Event()
    async with running_world(tmp_path, clock=CLOCK, issuer_timeout=0.5, issuer_b_up=up) as world:
        opening = balance(world, DEBIT_B)
        request, code = await purchase(world, 4_000)
        assert code == ResponseCode.APPROVED  # the switch stood in (limit 100.00)
        assert balance(world, DEBIT_B) == opening  # the issuer never saw it
        key = (ACQUIRER_ID, request.rrn, "02")
        assert world.journal.reversal_states() == {key: "pending"}

        assert await world.switch.retry_reversals() == 0  # still down: kept
        assert world.journal.reversal_states() == {key: "pending"}

        up.set()
        assert await world.switch.retry_reversals() == 1
        assert balance(world, DEBIT_B) == opening - 4_000
        assert world.journal.reversal_states() == {key: "done"}
        assert await world.switch.retry_reversals() == 0  # acknowledged: never sent again
        assert balance(world, DEBIT_B) == opening - 4_000


async def test_an_advice_for_a_purchase_the_silent_issuer_did_post_posts_nothing_twice(tmp_path: Path) -> None:
    gate = anyio.Event()
    async with running_world(tmp_path, clock=CLOCK, issuer_timeout=0.5, issuer_b_gate=gate) as world:
        opening = balance(world, DEBIT_B)
        request, code = await purchase(world, 3_000)
        assert code == ResponseCode.APPROVED  # stood in: the issuer's answer was late
        assert balance(world, DEBIT_B) == opening - 3_000  # but it did post
        gate.set()
        assert await world.switch.retry_reversals() == 1  # the advice: the ledger's first answer for that key
        assert balance(world, DEBIT_B) == opening - 3_000
        assert world.journal.reversal_states() == {(ACQUIRER_ID, request.rrn, "02"): "done"}


async def test_above_the_stand_in_limit_the_issuer_gets_a_reversal_not_an_advice(tmp_path: Path) -> None:
    up = anyio.Event()
    async with running_world(tmp_path, clock=CLOCK, issuer_timeout=0.5, issuer_b_up=up) as world:
        opening = balance(world, DEBIT_B)
        _, code = await purchase(world, 20_000)
        assert code == ResponseCode.ISSUER_UNAVAILABLE
        up.set()
        assert await world.switch.retry_reversals() == 1  # the owed reversal (the link dropped after sending)
        assert balance(world, DEBIT_B) == opening  # declined by the switch: nothing posted at the issuer


async def test_a_stand_in_approval_reversed_in_stand_in_reaches_the_issuer_as_advice_then_reversal(
    tmp_path: Path,
) -> None:
    up = anyio.Event()
    async with running_world(tmp_path, clock=CLOCK, issuer_timeout=0.5, issuer_b_up=up) as world:
        opening = balance(world, DEBIT_B)
        original, code = await purchase(world, 5_000)
        assert code == ResponseCode.APPROVED
        reversal = world.request(
            LedgerOp.REVERSAL,
            DEBIT_B,
            5_000,
            stan=world.next_stan(),
            rrn=original.rrn,
            original=OriginalData(
                mti="0200", stan=original.stan, local_date=original.local_date, local_time=original.local_time
            ),
        )
        assert (await world.send(reversal)).fields["39"] == ResponseCode.APPROVED  # the switch's own to approve
        up.set()
        assert await world.switch.retry_reversals() == 2  # the advice, then the reversal, in that order
        assert balance(world, DEBIT_B) == opening
        assert set(world.journal.reversal_states().values()) == {"done"}


async def test_an_advice_the_issuer_would_decline_is_posted_forced_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    up = anyio.Event()
    async with running_world(tmp_path, clock=CLOCK, issuer_timeout=0.5, issuer_b_up=up) as world:
        assert balance(world, LOW_B) == 2_000
        request, code = await purchase(world, 5_000, LOW_B)
        assert code == ResponseCode.APPROVED  # the switch stood in: the scheme guaranteed the merchant
        up.set()
        assert await world.switch.retry_reversals() == 1
        assert world.journal.reversal_states() == {(ACQUIRER_ID, request.rrn, "02"): "done"}  # answered 00
        assert balance(world, LOW_B) == -3_000  # the issuer's 51 does not apply to what the scheme guaranteed

        # the same advice again, straight to the issuer's ledger (host link 0120): its first answer, posted once
        advice = LedgerRequest(
            op=LedgerOp.PURCHASE,
            acquirer_id=ACQUIRER_ID,
            terminal_id=request.terminal_id,
            merchant_id=request.merchant_id,
            stan=request.stan,
            local_time=request.local_time,
            local_date=request.local_date,
            transmission=request.transmission,
            pan=LOW_B.pan,
            rrn=request.rrn,
            amount=5_000,
            forced=True,
        )
        again = await world.ledger_b.submit(advice)
        assert again.response_code is ResponseCode.APPROVED
        assert balance(world, LOW_B) == -3_000
        changed = await world.ledger_b.submit(dataclasses.replace(advice, amount=5_100))
        assert changed.response_code is ResponseCode.DUPLICATE

        capsys.readouterr()
        assert main(["ledger", "statement", LOW_B.pan, "--db", str(world.ledger_b_db), "--json"]) == 0
        statement = json.loads(capsys.readouterr().out)
        assert statement["balance"] == -3_000
        assert [e["amount"] for e in statement["entries"] if e["forced"]] == [-5_000]
        assert main(["ledger", "statement", LOW_B.pan, "--db", str(world.ledger_b_db)]) == 0
        assert "FORCED (stand-in advice)" in capsys.readouterr().out
