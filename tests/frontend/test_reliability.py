"""The front-end over real TCP with the real HSM and ledger services: a ledger that dies mid-day, an HSM that
is gone, and a front-end restarted with a reversal still owed to the ledger."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from acqkit.config import AcqsimConfig, Endpoint
from acqkit.netio import FramedConnection, connect, serve_tcp
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
from terminal.pos import PosTerminal
from tests.keyring import registry_for

pytestmark = pytest.mark.anyio
HOST = "127.0.0.1"


async def _until(condition: object, timeout: float = 10.0) -> None:
    with anyio.fail_after(timeout):
        while not condition():  # type: ignore[operator]  # noqa: ASYNC110 - polling a store, no event to wait on
            await anyio.sleep(0.05)


async def _ledger_proxy(
    conn: FramedConnection,
    *,
    upstream_port: int,
    before: Callable[[], None] = lambda: None,
    delay_s: Callable[[], float] = lambda: 0.0,
) -> None:
    """Between the front-end and the ledger: ``before`` runs as each request passes, and each answer is held
    back ``delay_s()`` seconds after the ledger gave it (it has posted by then)."""
    upstream = await connect(HOST, upstream_port, timeout=5)
    try:
        while (payload := await conn.receive(30)) is not None:
            before()
            await upstream.send(payload)
            answer = await upstream.receive(30)
            await anyio.sleep(delay_s())
            if answer is None:
                return
            await conn.send(answer)
    finally:
        await upstream.aclose()


async def test_ledger_down_gives_98_then_the_reversal_is_forwarded_after_a_restart(tmp_path: Path) -> None:
    config = AcqsimConfig.default(data_dir=tmp_path)
    card = config.card("6200001000000003")
    db = config.store_path(config.ledger.db)
    journal_path = config.store_path(config.frontend.db)
    async with anyio.create_task_group() as tg:
        hsm_port = await tg.start(functools.partial(serve_hsm, HOST, 0, lmk=DEFAULT_TEST_LMK))
        service = open_service(db, config)
        ledger_scope, ledger_stopped = anyio.CancelScope(), anyio.Event()

        async def ledger(port: int, *, task_status: anyio.abc.TaskStatus[int]) -> None:
            try:
                with ledger_scope:
                    await serve_ledger(HOST, port, service=service, task_status=task_status)
            finally:
                ledger_stopped.set()  # its listener and connections are closed

        ledger_port = await tg.start(ledger, 0)
        hsm = await HsmClient.connect(HOST, hsm_port)
        ledger_client = await LedgerClient.connect(HOST, ledger_port, timeout=1.0)
        journal = Journal(journal_path)
        frontend = Frontend(Context(registry=registry_for(config)), journal, hsm, ledger_client)
        fe_scope = anyio.CancelScope()

        async def run_frontend(*, task_status: anyio.abc.TaskStatus[int]) -> None:
            with fe_scope:
                await serve_frontend(HOST, 0, frontend=frontend, task_status=task_status)

        fe_port = await tg.start(run_frontend)
        # The terminal talks to the front-end directly here (the NAC is tested on its own).
        async with PosTerminal(config, "10000001", nac=Endpoint(host=HOST, port=fe_port), timeout=5) as pos:
            assert (await pos.sign_on()) is not None
            ok = await pos.financial("purchase", card, amount=1_000, pin=card.pin)
            assert ok is not None and ok.approved

            ledger_scope.cancel()  # the ledger dies
            with anyio.fail_after(5):
                await ledger_stopped.wait()
            down = await pos.financial("purchase", card, amount=2_000, pin=card.pin)
            assert down is not None and down.response_code == "98" and down.trusted
            assert len(journal.pending_reversals()) == 1

            # The front-end restarts (same journal) while the reversal is still owed.
            fe_scope.cancel()
            await frontend.ledger.aclose()
            service.store.close()
            service2 = open_service(db, None)
            port2 = await tg.start(functools.partial(serve_ledger, HOST, ledger_port, service=service2))
            ledger2 = await LedgerClient.connect(HOST, port2, timeout=2.0)
            restarted = Frontend(Context(registry=registry_for(config)), Journal(journal_path), hsm, ledger2)
            await tg.start(functools.partial(serve_frontend, HOST, fe_port, frontend=restarted))
            await _until(lambda: not restarted.journal.pending_reversals())
            after = await pos.financial("balance", card, pin=card.pin)
            assert after is not None and after.fields["54"].endswith(f"{card.balance - 1_000:012d}")
            await ledger2.aclose()
        await hsm.aclose()
        tg.cancel_scope.cancel()
    service2.store.close()


async def test_hsm_gone_gives_96_and_the_front_end_keeps_serving(tmp_path: Path) -> None:
    config = AcqsimConfig.default(data_dir=tmp_path)
    card = config.card("6200001000000003")
    async with anyio.create_task_group() as tg:
        hsm_scope, hsm_stopped = anyio.CancelScope(), anyio.Event()

        async def hsm_service(*, task_status: anyio.abc.TaskStatus[int]) -> None:
            try:
                with hsm_scope:
                    await serve_hsm(HOST, 0, lmk=DEFAULT_TEST_LMK, task_status=task_status)
            finally:
                hsm_stopped.set()  # its listener and connections are closed

        hsm_port = await tg.start(hsm_service)
        service = open_service(config.store_path(config.ledger.db), config)
        ledger_port = await tg.start(functools.partial(serve_ledger, HOST, 0, service=service))
        hsm = await HsmClient.connect(HOST, hsm_port, timeout=1.0)
        ledger = await LedgerClient.connect(HOST, ledger_port)
        frontend = Frontend(
            Context(registry=registry_for(config)), Journal(config.store_path(config.frontend.db)), hsm, ledger
        )
        fe_port = await tg.start(functools.partial(serve_frontend, HOST, 0, frontend=frontend))
        async with PosTerminal(config, "10000001", nac=Endpoint(host=HOST, port=fe_port), timeout=5) as pos:
            assert (await pos.sign_on()) is not None
            hsm_scope.cancel()
            with anyio.fail_after(5):
                await hsm_stopped.wait()
            outcome = await pos.financial("purchase", card, amount=100, pin=card.pin)
            assert outcome is not None and outcome.response_code == "96"
            echo = await pos.echo()
            assert echo is not None and echo.response_code == "00"  # still serving
        await hsm.aclose()
        await ledger.aclose()
        tg.cancel_scope.cancel()
    service.store.close()


async def test_slow_ledger_posts_late_and_the_reversal_undoes_it(tmp_path: Path) -> None:
    """The ledger posts but answers after the front-end gave up: 98, then the stored reversal undoes it."""
    config = AcqsimConfig.default(data_dir=tmp_path)
    card = config.card("6200001000000003")
    delay = {"s": 0.0}
    slow_proxy = functools.partial(_ledger_proxy, delay_s=lambda: delay["s"])  # posted, but answered late

    async with anyio.create_task_group() as tg:
        hsm_port = await tg.start(functools.partial(serve_hsm, HOST, 0, lmk=DEFAULT_TEST_LMK))
        service = open_service(config.store_path(config.ledger.db), config)
        ledger_port = await tg.start(functools.partial(serve_ledger, HOST, 0, service=service))
        proxy_port = await tg.start(
            functools.partial(serve_tcp, HOST, 0, functools.partial(slow_proxy, upstream_port=ledger_port), name="slow")
        )
        hsm = await HsmClient.connect(HOST, hsm_port)
        ledger = await LedgerClient.connect(HOST, proxy_port, timeout=0.5)
        frontend = Frontend(
            Context(registry=registry_for(config)), Journal(config.store_path(config.frontend.db)), hsm, ledger
        )
        fe_port = await tg.start(functools.partial(serve_frontend, HOST, 0, frontend=frontend))
        account = service.state.accounts[service.state.cards[card.pan].account_id]
        async with PosTerminal(config, "10000001", nac=Endpoint(host=HOST, port=fe_port), timeout=5) as pos:
            assert (await pos.sign_on()) is not None
            delay["s"] = 1.0
            late = await pos.financial("purchase", card, amount=4_000, pin=card.pin)
            assert late is not None and late.response_code == "98"
            delay["s"] = 0.0
            await _until(lambda: not frontend.journal.pending_reversals())
            assert account.balance == card.balance  # posted late, then reversed: nothing lost or doubled
            purchases = [t for t in service.state.txns.values() if t.amount == 4_000 and t.op.value == "purchase"]
            assert [t.status.value for t in purchases] == ["reversed"]
        await hsm.aclose()
        await ledger.aclose()
        tg.cancel_scope.cancel()
    service.store.close()


async def test_a_failed_journal_answers_96_and_the_front_end_keeps_serving(tmp_path: Path) -> None:
    """The journal's database goes away mid-day (closed under the front-end): a request that must be journaled
    gets 96 — nothing goes to the ledger unjournaled — and the connection and service stay up."""
    config = AcqsimConfig.default(data_dir=tmp_path)
    card = config.card("6200001000000003")
    async with anyio.create_task_group() as tg:
        hsm_port = await tg.start(functools.partial(serve_hsm, HOST, 0, lmk=DEFAULT_TEST_LMK))
        service = open_service(config.store_path(config.ledger.db), config)
        ledger_port = await tg.start(functools.partial(serve_ledger, HOST, 0, service=service))
        hsm = await HsmClient.connect(HOST, hsm_port)
        ledger = await LedgerClient.connect(HOST, ledger_port)
        journal = Journal(config.store_path(config.frontend.db))
        frontend = Frontend(Context(registry=registry_for(config)), journal, hsm, ledger)
        fe_port = await tg.start(functools.partial(serve_frontend, HOST, 0, frontend=frontend))
        account = service.state.accounts[service.state.cards[card.pan].account_id]
        async with PosTerminal(config, "10000001", nac=Endpoint(host=HOST, port=fe_port), timeout=5) as pos:
            assert (await pos.sign_on()) is not None
            ok = await pos.financial("purchase", card, amount=100, pin=card.pin)
            assert ok is not None and ok.approved
            journal.close()
            failed = await pos.financial("purchase", card, amount=200, pin=card.pin)
            assert failed is not None and failed.response_code == "96"
            assert account.balance == card.balance - 100  # the second purchase never reached the ledger
            echo = await pos.echo()
            assert echo is not None and echo.response_code == "00"  # same front-end, still serving
        await hsm.aclose()
        await ledger.aclose()
        tg.cancel_scope.cancel()
    service.store.close()


async def test_a_journal_failing_after_the_ledger_posted_leaves_it_to_the_terminals_reversal(tmp_path: Path) -> None:
    """The journal dies while the ledger is posting: no answer (a 96 would hide a posting), the terminal's
    automatic reversal undoes the posting once a front-end with a working journal is back."""
    config = AcqsimConfig.default(data_dir=tmp_path)
    card = config.card("6200001000000003")
    journal_path = config.store_path(config.frontend.db)
    armed: dict[str, Journal | None] = {"journal": None}

    def close_armed_journal() -> None:  # the journal goes away while the ledger handles the request
        if (journal := armed["journal"]) is not None:
            journal.close()
            armed["journal"] = None

    proxy = functools.partial(_ledger_proxy, before=close_armed_journal)

    async with anyio.create_task_group() as tg:
        hsm_port = await tg.start(functools.partial(serve_hsm, HOST, 0, lmk=DEFAULT_TEST_LMK))
        service = open_service(config.store_path(config.ledger.db), config)
        ledger_port = await tg.start(functools.partial(serve_ledger, HOST, 0, service=service))
        proxy_port = await tg.start(
            functools.partial(serve_tcp, HOST, 0, functools.partial(proxy, upstream_port=ledger_port), name="proxy")
        )
        hsm = await HsmClient.connect(HOST, hsm_port)
        ledger = await LedgerClient.connect(HOST, proxy_port)
        journal = Journal(journal_path)
        frontend = Frontend(Context(registry=registry_for(config)), journal, hsm, ledger)
        fe_scope = anyio.CancelScope()

        async def run_frontend(*, task_status: anyio.abc.TaskStatus[int]) -> None:
            with fe_scope:
                await serve_frontend(HOST, 0, frontend=frontend, task_status=task_status)

        fe_port = await tg.start(run_frontend)
        account = service.state.accounts[service.state.cards[card.pan].account_id]
        async with PosTerminal(config, "10000001", nac=Endpoint(host=HOST, port=fe_port), timeout=2) as pos:
            assert (await pos.sign_on()) is not None
            armed["journal"] = journal
            lost = await pos.financial("purchase", card, amount=7_000, pin=card.pin)
            assert lost is None  # no answer: the terminal keeps a reversal due
            assert account.balance == card.balance - 7_000  # the ledger did post
            fe_scope.cancel()  # the front-end is restarted with its journal back
            restarted = Frontend(Context(registry=registry_for(config)), Journal(journal_path), hsm, ledger)
            new_port = await tg.start(functools.partial(serve_frontend, HOST, 0, frontend=restarted))
            pos.nac = Endpoint(host=HOST, port=new_port)
            balance = await pos.financial("balance", card, pin=card.pin)  # sends the due reversal first
            assert balance is not None and balance.approved
            assert account.balance == card.balance  # reversed: nothing lost or doubled
        await hsm.aclose()
        await ledger.aclose()
        tg.cancel_scope.cancel()
    service.store.close()
