"""``acqsim issuer serve --config FILE``: an issuer host as its own process (docs/scheme.md).

It needs its HSM and its ledger: either unreachable at start, it exits 3. Prints ``READY issuer HOST:PORT`` once
it listens; stops on SIGTERM.
"""

from __future__ import annotations

import functools
import signal
from pathlib import Path

import anyio

from acqkit.exitcodes import EXIT_UNREACHABLE
from acqkit.runner import announce, run_service
from core_ledger.client import LedgerClient, LedgerUnavailable
from hsm_sim.client import HsmClient, HsmUnavailable
from issuer_host.config import IssuerConfig
from issuer_host.server import IssuerShell, serve
from wire.trace import TraceWriter


def serve_issuer(config: IssuerConfig, *, trace_dir: Path | None = None) -> int:
    unreachable: list[str] = []

    async def stop_on_signal(scope: anyio.CancelScope) -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for _ in signals:
                scope.cancel()
                return

    async def main() -> None:
        try:
            hsm = await HsmClient.connect(config.hsm.host, config.hsm.port)
        except HsmUnavailable as exc:
            unreachable.append(f"the issuer's HSM at {config.hsm}: {exc}")
            return
        try:
            ledger = await LedgerClient.connect(config.ledger.host, config.ledger.port)
        except LedgerUnavailable as exc:
            unreachable.append(f"the issuer's ledger at {config.ledger}: {exc}")
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
                port = await tg.start(functools.partial(serve, config.listen.host, config.listen.port, shell=shell))
                announce("issuer", config.listen.host, port)
        finally:
            with anyio.CancelScope(shield=True):
                await hsm.aclose()
                await ledger.aclose()
            trace.close()

    code = run_service(main)
    if unreachable:
        print(f"acqsim issuer serve: {unreachable[0]}", flush=True)
        return EXIT_UNREACHABLE
    return code
