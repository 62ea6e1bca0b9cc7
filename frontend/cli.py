"""``acqsim frontend``: run the acquirer front-end processor.

acqsim frontend [--config FILE] [--host H] [--port P] [--hsm HOST:PORT] [--ledger HOST:PORT] [--db PATH]
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

import anyio

from acqkit.config import ConfigError, Endpoint, load_config
from acqkit.runner import announce, run_service
from acqkit.serving import serving_for
from acqkit.tls import add_serving_arguments
from core_ledger.client import LedgerClient, LedgerUnavailable
from frontend.core import Context
from frontend.journal import Journal
from frontend.registry import Registry
from frontend.server import Frontend, serve
from hsm_sim.client import HsmClient, HsmUnavailable
from wire.trace import TraceWriter


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path)
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--hsm", help="HOST:PORT of the HSM (default: the configuration's)")
    parser.add_argument("--ledger", help="HOST:PORT of the core ledger (default: the configuration's)")
    parser.add_argument("--db", help="journal SQLite path (default: the configuration's)")
    parser.add_argument("--trace-dir", type=Path, help="append JSON-lines trace records to DIR/frontend.jsonl")
    add_serving_arguments(parser)


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
        hsm_at = Endpoint.parse(args.hsm) if args.hsm else config.hsm.listen
        ledger_at = Endpoint.parse(args.ledger) if args.ledger else config.ledger.listen
        serving = serving_for(
            "frontend",
            tls_dir=args.tls_dir,
            max_connections=args.max_connections,
            config=config,
            configured_max=config.frontend.max_connections,
        )
    except (ConfigError, ValueError, OSError) as exc:
        print(f"acqsim frontend: {exc}", file=sys.stderr)
        return 2
    host = args.host or config.frontend.listen.host
    port = config.frontend.listen.port if args.port is None else args.port
    journal = Journal(args.db or config.store_path(config.frontend.db))
    ctx = Context(registry=Registry.from_config(config))

    async def main() -> None:
        try:
            hsm = await HsmClient.connect(hsm_at.host, hsm_at.port, tls=serving.client_tls)
            ledger = await LedgerClient.connect(ledger_at.host, ledger_at.port, tls=serving.client_tls)
        except (HsmUnavailable, LedgerUnavailable) as exc:
            print(f"acqsim frontend: {exc}", file=sys.stderr)
            return
        async with hsm, ledger, anyio.create_task_group() as tg:
            trace = TraceWriter(args.trace_dir, "frontend")
            frontend = Frontend(ctx, journal, hsm, ledger, trace=trace)
            bound = await tg.start(functools.partial(serve, host, port, frontend=frontend, serving=serving))
            print(serving.summary, flush=True)
            announce("frontend", host, bound)

    try:
        return run_service(main)
    finally:
        journal.close()
