"""Issue 17: a card's PIN tries are shared by a pool of front-ends. Two front-ends (journals of their own) on one
ledger, over real TCP with the real HSM and a real SQLite ledger: 3 wrong PINs spread over both, then the 4th
try on either is 75, and so is the right PIN; the next business day starts again."""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path

import anyio
import pytest

from acqkit.config import AcqsimConfig, Endpoint
from core_ledger.api import LedgerOp
from core_ledger.client import LedgerClient
from core_ledger.server import serve as serve_ledger
from core_ledger.setup import open_service
from frontend.core import Context
from frontend.journal import Journal
from frontend.server import Frontend
from frontend.server import serve as serve_frontend
from hsm_sim.client import HsmClient
from hsm_sim.keys import DEFAULT_TEST_LMK
from hsm_sim.server import serve as serve_hsm
from terminal.load.runner import LOAD_TERMINAL_PREFIX, with_load_terminals
from terminal.pos import PosTerminal
from tests.keyring import registry_for
from tests.secrets_scan import secrets_in
from wire.constants import ResponseCode as RC

pytestmark = pytest.mark.anyio
HOST = "127.0.0.1"
WRONG_PIN = "000000"


async def test_three_wrong_pins_over_two_front_ends_use_up_the_day_for_both(tmp_path: Path) -> None:
    config = with_load_terminals(AcqsimConfig.default(data_dir=tmp_path), 2)
    card = config.card("6200001000000011")
    today = dt.datetime.now()
    clock = [today]  # the front-ends' and terminals' clock (fields 12/13: the ledger's business date)
    service = open_service(config.store_path(config.ledger.db), config)
    journals = [Journal(tmp_path / f"frontend-{i}" / "frontend.sqlite3", instance=i) for i in (1, 2)]
    codes: list[str] = []
    async with anyio.create_task_group() as tg:
        hsm_port = await tg.start(functools.partial(serve_hsm, HOST, 0, lmk=DEFAULT_TEST_LMK))
        ledger_port = await tg.start(functools.partial(serve_ledger, HOST, 0, service=service))
        clients: list[HsmClient | LedgerClient] = []
        poses: list[PosTerminal] = []
        for number, journal in enumerate(journals, start=1):
            hsm = await HsmClient.connect(HOST, hsm_port)
            ledger = await LedgerClient.connect(HOST, ledger_port, timeout=5)
            clients += [hsm, ledger]
            context = Context(registry=registry_for(config), clock=lambda: clock[0])
            frontend = Frontend(context, journal, hsm, ledger)
            port = await tg.start(functools.partial(serve_frontend, HOST, 0, frontend=frontend))
            pos = PosTerminal(
                config,
                f"{LOAD_TERMINAL_PREFIX}{number:07d}",
                nac=Endpoint(host=HOST, port=port),
                state_dir=tmp_path / "pos",
                persist=False,
                timeout=10,
            )
            pos.session.clock = lambda: clock[0]
            assert await pos.sign_on() is not None
            poses.append(pos)
        first, second = poses

        async def code(pos: PosTerminal, pin: str, amount: int = 100) -> str:
            outcome = await pos.financial("purchase", card, amount=amount, pin=pin)
            assert outcome is not None
            return outcome.response_code

        for pos in (first, second, first):  # 3 wrong PINs spread over both front-ends
            codes.append(await code(pos, WRONG_PIN))
        fourth_on_second = await code(second, WRONG_PIN)  # this front-end has seen 1 failure, the ledger 3
        right_on_second = await code(second, card.pin)  # verified right here, declined by the ledger
        fourth_on_first = await code(first, WRONG_PIN)
        right_on_first = await code(first, card.pin)

        clock[0] = today + dt.timedelta(days=1)  # the next business day
        next_day_right = await code(first, card.pin)
        next_day_wrong = await code(second, WRONG_PIN)

        for pos in poses:
            await pos.close()
        for client in clients:
            await client.aclose()
        tg.cancel_scope.cancel()
    failures = {
        txn.rrn: txn.answer.response_code for txn in service.state.txns.values() if txn.op is LedgerOp.PIN_FAILURE
    }
    service.store.close()
    for journal in journals:
        journal.close()
    assert codes == [RC.INCORRECT_PIN, RC.INCORRECT_PIN, RC.PIN_TRIES_EXCEEDED]
    assert fourth_on_second == fourth_on_first == RC.PIN_TRIES_EXCEEDED
    assert right_on_second == right_on_first == RC.PIN_TRIES_EXCEEDED
    assert next_day_right == RC.APPROVED and next_day_wrong == RC.INCORRECT_PIN
    assert len(failures) == 6  # every wrong PIN reported once, each under its own request's RRN
    assert secrets_in(tmp_path, "") == []  # no clear PIN, key or full PAN in what the run wrote
