"""``acqsim issuer serve --config FILE``: an issuer host as its own process (docs/scheme.md).

It needs its HSM and its ledger: either still unreachable after ``peer_wait`` seconds of trying, it exits 3 with
one line naming it. Prints ``READY issuer HOST:PORT`` once it listens; stops on SIGTERM.
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path
from typing import Final

import anyio.abc

from acqkit.peerclient import PEER_RETRY_WINDOW_S
from acqkit.runner import announce, peer, run_peered_service
from acqkit.serving import serving_for
from core_ledger.client import LedgerClient
from hsm_sim.client import HsmClient
from issuer_host.config import IssuerConfig
from issuer_host.server import IssuerShell, serve
from wire.trace import TraceWriter

#: The issuer host's name: its TLS identity, its READY line and the service of its trace records.
ISSUER_SERVICE_NAME: Final = "issuer"


def serve_issuer(
    config: IssuerConfig,
    *,
    trace_dir: Path | None = None,
    peer_wait: float = PEER_RETRY_WINDOW_S,
    tls_dir: Path | None = None,
) -> int:
    """``tls_dir``: mutual TLS on every hop (the switch in, the HSM and ledger out) as ``issuer``."""
    serving = serving_for(ISSUER_SERVICE_NAME, tls_dir=tls_dir, max_connections=None)

    async def main(stack: contextlib.AsyncExitStack, tg: anyio.abc.TaskGroup) -> None:
        tls = serving.client_tls
        hsm = await peer(
            stack, functools.partial(HsmClient.connect, config.hsm.host, config.hsm.port, tls=tls), peer_wait
        )
        connect_ledger = functools.partial(LedgerClient.connect, config.ledger.host, config.ledger.port, tls=tls)
        ledger = await peer(stack, connect_ledger, peer_wait)
        trace = TraceWriter(trace_dir, ISSUER_SERVICE_NAME)
        stack.callback(trace.close)
        shell = IssuerShell(
            issuer_id=config.issuer_id,
            switch_id=config.switch_id,
            keys=config.keys,
            hsm=hsm,
            ledger=ledger,
            trace=trace,
        )
        port = await tg.start(
            functools.partial(serve, config.listen.host, config.listen.port, shell=shell, serving=serving)
        )
        print(serving.summary, flush=True)
        announce(ISSUER_SERVICE_NAME, config.listen.host, port)

    return run_peered_service("acqsim issuer serve", main)
