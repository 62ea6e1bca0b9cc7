"""The four services started in one process, in one task group, on loopback ports chosen by the OS.

For tests, benchmarks and ``acqsim demo``'s in-process mode; ``acqsim up`` runs them as separate processes.
The HSM opens (or, the first time, creates) the data folder's sealed LMK file itself; the key ceremony
(:mod:`acqsim.provision`) loads the TEST keys through it before the front-end is built from the key store.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import anyio.abc

from acqkit.config import AcqsimConfig, Endpoint
from acqsim.provision import key_ceremony
from core_ledger.client import LedgerClient
from core_ledger.server import serve as serve_ledger
from core_ledger.setup import open_service
from frontend.core import Context
from frontend.journal import Journal
from frontend.registry import Registry
from frontend.routing import SchemeRoute
from frontend.server import Frontend
from frontend.server import serve as serve_frontend
from hsm_sim.client import HsmClient
from hsm_sim.server import serve_sealed as serve_hsm
from merchant.client import HsmLinkSigner, MerchantClient, link_keys
from nac.routes import RouteTable
from nac.server import NacServer
from scheme.client import SwitchLinkClient
from wallet.client import WalletClient
from wallet.server import WalletHost
from wallet.server import serve as serve_wallet
from wallet.store import WALLET_DB, WalletStore
from wire.trace import TraceWriter

LOOPBACK = "127.0.0.1"

#: Given the acquirer's HSM, the link to a scheme switch and the front-end's BIN table (its zone keys put into
#: that HSM first): how off-us cards reach their issuers (``acqsim.fourparty.acquirer_access``).
SchemeAccess = Callable[[HsmClient], Awaitable[tuple[SwitchLinkClient, SchemeRoute]]]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Pipeline:
    config: AcqsimConfig
    hsm: Endpoint
    ledger: Endpoint
    frontend: Endpoint
    nac: Endpoint
    wallet: Endpoint
    #: Cancelling it stops the wallet host alone (tests: the wallet host down).
    wallet_stop: anyio.CancelScope
    cancel: anyio.CancelScope
    #: The front-end itself (tests drive its store-and-forward of reversals directly).
    frontend_service: Frontend


@asynccontextmanager
async def running_pipeline(
    config: AcqsimConfig,
    *,
    trace: bool = False,
    scheme: SchemeAccess | None = None,
    merchant_platform: Endpoint | None = None,
) -> AsyncIterator[Pipeline]:
    """Start HSM, ledger, wallet host, front-end and NAC on free loopback ports; stop them all on exit.

    With ``trace`` every service appends trace records under ``config.trace_dir``. With ``scheme`` the front-end
    sends off-us cards to a scheme switch (docs/scheme.md). With ``merchant_platform`` the front-end tells that
    merchant platform of each settled batch (store-and-forward: it need not be up yet; docs/smartpos.md).
    """
    config.data_dir.mkdir(parents=True, exist_ok=True)
    traces = {
        # each service writes its trace in batches, off its event loop (its server runs acqkit/traceflush.py)
        name: TraceWriter(config.trace_dir if trace else None, name)
        for name in ("nac", "frontend", "hsm", "ledger")
    }
    service = open_service(config.store_path(config.ledger.db), config)
    journal = Journal(config.store_path(config.frontend.db))
    wallet_store = WalletStore(config.data_dir / WALLET_DB)
    try:
        async with anyio.create_task_group() as tg:
            hsm_port = await tg.start(
                functools.partial(
                    serve_hsm,
                    LOOPBACK,
                    0,
                    lmk_file=Path(config.store_path(config.hsm.lmk_file)),
                    allow_clear_import=config.hsm.allow_clear_import,
                    trace=traces["hsm"],
                )
            )
            ledger_port = await tg.start(
                functools.partial(serve_ledger, LOOPBACK, 0, service=service, trace=traces["ledger"])
            )
            wallet_stop = anyio.CancelScope()

            async def run_wallet(*, task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED) -> None:
                with wallet_stop:
                    await serve_wallet(LOOPBACK, 0, wallet=WalletHost(wallet_store), task_status=task_status)

            wallet_port = await tg.start(run_wallet)
            hsm = await HsmClient.connect(LOOPBACK, hsm_port)
            ledger = await LedgerClient.connect(LOOPBACK, ledger_port)
            wallet = WalletClient(LOOPBACK, wallet_port)
            merchant = None
            keys = await key_ceremony(config, hsm)
            registry = Registry.from_key_store(config, keys, config.key_store_path)
            if merchant_platform is not None:
                signer = HsmLinkSigner(hsm, link_keys(keys))
                merchant = MerchantClient(merchant_platform.host, merchant_platform.port, signer=signer)
            link, route = await scheme(hsm) if scheme is not None else (None, None)
            frontend = Frontend(
                Context(registry=registry, scheme=route),
                journal,
                hsm,
                ledger,
                trace=traces["frontend"],
                wallet=wallet,
                scheme=link,
                merchant=merchant,
            )
            fe_port = await tg.start(functools.partial(serve_frontend, LOOPBACK, 0, frontend=frontend))
            nac = NacServer(
                RouteTable.parse([f"{route}={LOOPBACK}:{fe_port}" for route in config.nac.routes]),
                trace=traces["nac"] if trace else None,
            )
            ports = await tg.start(functools.partial(nac.serve, LOOPBACK, 0))
            yield Pipeline(
                config=config,
                hsm=Endpoint(host=LOOPBACK, port=hsm_port),
                ledger=Endpoint(host=LOOPBACK, port=ledger_port),
                frontend=Endpoint(host=LOOPBACK, port=fe_port),
                nac=Endpoint(host=LOOPBACK, port=ports.listen),
                wallet=Endpoint(host=LOOPBACK, port=wallet_port),
                wallet_stop=wallet_stop,
                cancel=tg.cancel_scope,
                frontend_service=frontend,
            )
            await hsm.aclose()
            await ledger.aclose()
            await wallet.aclose()
            if merchant is not None:
                await merchant.aclose()
            if link is not None:
                await link.aclose()
            tg.cancel_scope.cancel()
    finally:
        for writer in traces.values():
            writer.close()
        journal.close()
        service.store.close()
        wallet_store.close()
