"""``acqsim issuer serve --config FILE``: an issuer host as its own process (docs/scheme.md).

It needs its HSM and its ledger: either still unreachable after ``peer_wait`` seconds of trying, it exits 3 with one
line naming it. Prints ``READY issuer HOST:PORT`` once
it listens; stops on SIGTERM.
"""

from __future__ import annotations

import functools
import signal
import sys
from pathlib import Path

import anyio

from acqkit.exitcodes import EXIT_UNREACHABLE
from acqkit.peerclient import PEER_RETRY_WINDOW_S, connect_within
from acqkit.runner import announce, run_service
from acqkit.serving import serving_for
from core_ledger.client import LedgerClient, LedgerUnavailable
from hsm_sim.client import HsmClient, HsmUnavailable
from issuer_host.config import IssuerConfig
from issuer_host.server import IssuerShell, serve
from wire.trace import TraceWriter


def serve_issuer(
    config: IssuerConfig,
    *,
    trace_dir: Path | None = None,
    peer_wait: float = PEER_RETRY_WINDOW_S,
    tls_dir: Path | None = None,
) -> int:
    """``tls_dir``: mutual TLS on every hop (the switch in, the HSM and ledger out) as ``issuer``."""
    unreachable: list[str] = []
    serving = serving_for("issuer", tls_dir=tls_dir, max_connections=None)

    async def stop_on_signal(scope: anyio.CancelScope) -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for _ in signals:
                scope.cancel()
                return

    async def main() -> None:
        try:
            hsm = await connect_within(
                functools.partial(HsmClient.connect, config.hsm.host, config.hsm.port, tls=serving.client_tls),
                peer_wait,
            )
        except HsmUnavailable as exc:
            unreachable.append(f"{exc} (still so after {peer_wait:g} s)")
            return
        try:
            ledger = await connect_within(
                functools.partial(LedgerClient.connect, config.ledger.host, config.ledger.port, tls=serving.client_tls),
                peer_wait,
            )
        except LedgerUnavailable as exc:
            unreachable.append(f"{exc} (still so after {peer_wait:g} s)")
            await hsm.aclose()
            return
        trace = TraceWriter(trace_dir, "issuer")
        shell = IssuerShell(
            issuer_id=config.issuer_id,
            switch_id=config.switch_id,
            keys=config.keys,
            hsm=hsm,
            ledger=ledger,
            trace=trace,
        )
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(stop_on_signal, tg.cancel_scope)
                port = await tg.start(
                    functools.partial(serve, config.listen.host, config.listen.port, shell=shell, serving=serving)
                )
                announce("issuer", config.listen.host, port)
        finally:
            with anyio.CancelScope(shield=True):
                await hsm.aclose()
                await ledger.aclose()
            trace.close()

    code = run_service(main)
    if unreachable:
        print(f"acqsim issuer serve: {unreachable[0]}", file=sys.stderr, flush=True)
        return EXIT_UNREACHABLE
    return code
