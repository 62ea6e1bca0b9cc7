"""``acqsim scheme serve --config FILE``: run the switch as its own process (docs/scheme.md).

It needs its HSM (``hsm`` in the file; the HSM's LMK holds every member's zone keys): still unreachable after
``peer_wait`` seconds of trying, it exits 3 with one line naming it. The owed reversals are sealed under the data
key of the journal's folder (``data.key``, created on first use under ``ACQSIM_DATA_KEY_PASSPHRASE``). Prints
``READY scheme HOST:PORT`` once it listens; stops on SIGTERM.
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path

import anyio
import anyio.abc

from acqkit.datakey import DataKey
from acqkit.peerclient import PEER_RETRY_WINDOW_S
from acqkit.runner import announce, peer, run_peered_service
from acqkit.serving import serving_for
from hsm_sim.client import HsmClient
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
    serving = serving_for("scheme", tls_dir=tls_dir, max_connections=None)

    async def main(stack: contextlib.AsyncExitStack, tg: anyio.abc.TaskGroup) -> None:
        connect_hsm = functools.partial(HsmClient.connect, config.hsm.host, config.hsm.port, tls=serving.client_tls)
        hsm = await peer(stack, connect_hsm, peer_wait)
        config.journal.parent.mkdir(parents=True, exist_ok=True)
        journal = SwitchJournal(config.journal)
        stack.callback(journal.close)
        data_key = await anyio.to_thread.run_sync(DataKey.load_or_create, config.journal.parent)
        core = SwitchCore(
            switch_id=config.switch_id,
            members={m.institution_id: m for m in config.members},
            bins=BinTable(config.bins),
            stand_in=config.stand_in,
        )
        trace = TraceWriter(trace_dir, "scheme")
        stack.callback(trace.close)
        shell = SwitchShell(
            core,
            journal,
            hsm,
            issuer_timeout=config.issuer_timeout_s,
            trace=trace,
            data_key=data_key,
            issuer_tls=serving.client_tls,
        )
        listening = functools.partial(serve, config.listen.host, config.listen.port, shell=shell, serving=serving)
        port = await tg.start(listening)
        print(serving.summary, flush=True)
        announce("scheme", config.listen.host, port)

    return run_peered_service("acqsim scheme serve", main)
