"""``acqsim scheme serve --config FILE``: run the switch as its own process (docs/scheme.md).

It needs its HSM (``hsm`` in the file; the HSM's LMK holds every member's zone keys): still unreachable after
``peer_wait`` seconds of trying, it exits 3 with one line naming it. The owed reversals are sealed under the data
key of the journal's folder (``data.key``, created on first use under ``ACQSIM_DATA_KEY_PASSPHRASE``). Prints
``READY scheme HOST:PORT`` once it listens.
"""

from __future__ import annotations

import functools
import signal
import sys
from pathlib import Path

import anyio

from acqkit.datakey import DataKey
from acqkit.exitcodes import EXIT_UNREACHABLE
from acqkit.peerclient import PEER_RETRY_WINDOW_S, connect_within
from acqkit.runner import announce, run_service
from acqkit.serving import serving_for
from hsm_sim.client import HsmClient, HsmUnavailable
from scheme.bins import BinTable
from scheme.config import SwitchConfig
from scheme.core import SwitchCore
from scheme.journal import SwitchJournal
from scheme.server import SwitchShell, serve
from wire.trace import TraceWriter


def serve_switch(
    config: SwitchConfig,
    *,
    trace_dir: Path | None = None,
    peer_wait: float = PEER_RETRY_WINDOW_S,
    tls_dir: Path | None = None,
) -> int:
    """``tls_dir``: mutual TLS on every hop (acquirers in, issuers and the HSM out) as ``scheme``."""
    unreachable: list[str] = []
    serving = serving_for("scheme", tls_dir=tls_dir, max_connections=None)

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
        config.journal.parent.mkdir(parents=True, exist_ok=True)
        journal = SwitchJournal(config.journal)
        data_key = await anyio.to_thread.run_sync(DataKey.load_or_create, config.journal.parent)
        core = SwitchCore(
            switch_id=config.switch_id,
            members={m.institution_id: m for m in config.members},
            bins=BinTable(config.bins),
            stand_in=config.stand_in,
        )
        trace = TraceWriter(trace_dir, "scheme")
        shell = SwitchShell(
            core,
            journal,
            hsm,
            issuer_timeout=config.issuer_timeout_s,
            trace=trace,
            data_key=data_key,
            issuer_tls=serving.client_tls,
        )
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(stop_on_signal, tg.cancel_scope)
                port = await tg.start(
                    functools.partial(serve, config.listen.host, config.listen.port, shell=shell, serving=serving)
                )
                announce("scheme", config.listen.host, port)
        finally:
            with anyio.CancelScope(shield=True):
                await hsm.aclose()
            journal.close()
            trace.close()

    code = run_service(main)
    if unreachable:
        print(f"acqsim scheme serve: {unreachable[0]}", file=sys.stderr, flush=True)
        return EXIT_UNREACHABLE
    return code
