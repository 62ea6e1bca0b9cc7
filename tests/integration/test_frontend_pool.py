"""A pool of two real front-ends behind one NAC, over loopback TCP: sticky terminals, failover, return.

Each front-end has its own journal (its own folder) and RRN digit; both share the HSM and the ledger. The NAC
is sticky (nac/sticky.py): every request of a terminal reaches one member, whose RRN digit shows in field 37.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import anyio
import anyio.abc
import pytest

from acqkit.config import AcqsimConfig, Endpoint
from acqsim.provision import key_ceremony
from acqsim.reconcile import reconcile_stores
from core_ledger.client import LedgerClient
from core_ledger.server import serve as serve_ledger
from core_ledger.setup import open_service
from frontend.core import Context
from frontend.journal import Journal
from frontend.registry import Registry
from frontend.server import Frontend
from frontend.server import serve as serve_frontend
from hsm_sim.client import HsmClient
from hsm_sim.server import serve_sealed as serve_hsm
from nac.limits import NacLimits
from nac.routes import Member, RouteTable
from nac.server import NacServer
from terminal.load.runner import with_load_terminals
from terminal.pos import PosTerminal
from tests.nac.netkit import wait_until

pytestmark = pytest.mark.anyio

LOOPBACK = "127.0.0.1"
TERMINALS = 12  # both members get some: all on one has odds 2 / 2**12
CARD = "6200001000000003"


@dataclasses.dataclass
class Pool:
    config: AcqsimConfig
    nac_server: NacServer
    nac: Endpoint
    ledger_db: str
    journals: list[Path]
    members: list[str]
    scopes: list[anyio.CancelScope]
    start_member: Callable[[int, int], Awaitable[object]]


@contextlib.asynccontextmanager
async def running_pool(tmp_path: Path) -> AsyncIterator[Pool]:
    """HSM, ledger, two front-ends (instances 1 and 2, each its own journal folder) and a sticky NAC."""
    config = dataclasses.replace(with_load_terminals(AcqsimConfig.default(data_dir=tmp_path), TERMINALS), trace=False)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    ledger_db = config.store_path(config.ledger.db)
    service = open_service(ledger_db, config)
    journal_paths = [Path(config.frontend_db(k)) for k in (1, 2)]
    async with anyio.create_task_group() as tg:
        hsm_port = await tg.start(
            functools.partial(
                serve_hsm,
                LOOPBACK,
                0,
                lmk_file=Path(config.store_path(config.hsm.lmk_file)),
                allow_clear_import=config.hsm.allow_clear_import,
            )
        )
        ledger_port = await tg.start(functools.partial(serve_ledger, LOOPBACK, 0, service=service))
        hsm = await HsmClient.connect(LOOPBACK, hsm_port)
        ledger = await LedgerClient.connect(LOOPBACK, ledger_port)
        registry = Registry.from_key_store(config, await key_ceremony(config, hsm), config.key_store_path)
        scopes: list[anyio.CancelScope] = [anyio.CancelScope(), anyio.CancelScope()]

        async def member(instance: int, port: int, *, task_status: anyio.abc.TaskStatus[int]) -> None:
            """Front-end ``instance`` on ``port`` (0: any) until its scope is cancelled: killed, as the NAC sees it."""
            journal = Journal(journal_paths[instance - 1], instance=instance)
            scopes[instance - 1] = scope = anyio.CancelScope()
            try:
                with scope:
                    frontend = Frontend(Context(registry=registry), journal, hsm, ledger)
                    await serve_frontend(LOOPBACK, port, frontend=frontend, task_status=task_status)
            finally:
                journal.close()

        ports = [await tg.start(member, k, 0) for k in (1, 2)]
        members = [f"{LOOPBACK}:{p}" for p in ports]
        table = RouteTable(routes={"0003": "0003"}, groups={"0003": tuple(Member.parse(m) for m in members)})
        nac_server = NacServer(table, NacLimits(backoff_max_s=0.2), sticky=True)
        nac_ports = await tg.start(functools.partial(nac_server.serve, LOOPBACK, 0))
        await wait_until(lambda: all(nac_server.stats.members[name].up for name in members))
        try:
            yield Pool(
                config=config,
                nac_server=nac_server,
                nac=Endpoint(host=LOOPBACK, port=nac_ports.listen),
                ledger_db=ledger_db,
                journals=journal_paths,
                members=members,
                scopes=scopes,
                start_member=functools.partial(tg.start, member),
            )
        finally:
            await hsm.aclose()
            await ledger.aclose()
            tg.cancel_scope.cancel()
    service.store.close()


async def purchase(pool: Pool, terminal_id: str, amount: int) -> tuple[str, str]:
    """One purchase on a new connection (as a dial-up terminal does): (response code, answering instance)."""
    card = pool.config.card(CARD)
    async with PosTerminal(pool.config, terminal_id, nac=pool.nac, timeout=5.0) as pos:
        answer = await pos.financial("purchase", card, amount=amount, pin=card.pin)
    assert answer is not None, f"terminal {terminal_id}: no answer"
    return answer.response_code, answer.fields.get("37", "")[5:6]


async def test_a_pool_keeps_each_terminal_on_one_member_fails_over_and_returns_at_a_sign_on(tmp_path: Path) -> None:
    async with running_pool(tmp_path) as pool:
        terminals = [t.terminal_id for t in pool.config.terminals][-TERMINALS:]
        # sticky: every request of a terminal, each on a connection of its own, reaches the same member
        home: dict[str, str] = {}
        for terminal_id in terminals:
            for amount in (101, 102):
                code, instance = await purchase(pool, terminal_id, amount)
                assert code == "00"
                assert home.setdefault(terminal_id, instance) == instance, terminal_id
        assert set(home.values()) == {"1", "2"}, "both members serve terminals"
        moved = [t for t in terminals if home[t] == "1"]

        # member 1 dies: its terminals' next requests are answered by member 2 — first "77, sign on again"
        # (their session was on member 1), then, signed on there by themselves, approved
        pool.scopes[0].cancel()
        await wait_until(lambda: not pool.nac_server.stats.members[pool.members[0]].up)
        for terminal_id in terminals:
            if terminal_id in moved:
                assert (await purchase(pool, terminal_id, 103))[0] == "77"
            code, instance = await purchase(pool, terminal_id, 103)
            assert (code, instance) == ("00", "2"), terminal_id
        assert pool.nac_server.router.sticky is not None
        assert pool.nac_server.router.sticky["0003"].stats.failovers == len(moved)

        # member 1 comes back on its port: its old terminals stay on member 2 (their session is there) …
        await pool.start_member(1, int(pool.members[0].rsplit(":", 1)[1]))
        await wait_until(lambda: pool.nac_server.stats.members[pool.members[0]].up)
        for terminal_id in moved:
            assert await purchase(pool, terminal_id, 104) == ("00", "2")
        # … until a sign-on, the clean point where the session starts afresh: then back to member 1
        card = pool.config.card(CARD)
        for terminal_id in moved:
            async with PosTerminal(pool.config, terminal_id, nac=pool.nac, timeout=5.0) as pos:
                signed = await pos.sign_on()
                assert signed is not None and signed.approved
                answer = await pos.financial("purchase", card, amount=105, pin=card.pin)
            assert answer is not None and answer.response_code == "00"
            assert answer.fields["37"][5] == "1", terminal_id
        assert pool.nac_server.router.sticky["0003"].stats.returns == len(moved)

    # every posting once: both journals against the one ledger
    result = reconcile_stores(pool.journals, pool.ledger_db)
    assert result.clean, result.differences
    assert result.matched >= TERMINALS * 3
