"""``acqsim frontend``: run the acquirer front-end processor, or look into its journal.

acqsim frontend [serve] [--config FILE] [--host H] [--port P] [--hsm HOST:PORT] [--ledger HOST:PORT] [--db PATH]
                [--key-store PATH] [--wallet HOST:PORT] [--merchant-platform HOST:PORT]
    serves with the TMKs and PVK of the key store (cryptograms under the HSM's LMK; default
    <data_dir>/keys/keystore.json); a configured terminal without a TMK there stops it at start-up (exit 2).
acqsim frontend journal pending|dead-letters [--config FILE] [--db PATH] [--json]
    the store-and-forward reversals still owed to the ledger, or given up on (dead letters: refused for good,
    or MAX_REVERSAL_TRIES tries): an operator settles those by hand. Cards masked. Exit 1 if any dead letter.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import json
import sys
from pathlib import Path

import anyio

from acqkit.config import CONFIG_HELP, ConfigError, Endpoint, load_config, port_number
from acqkit.exitcodes import EXIT_DECLINED, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE
from acqkit.keystore import KeyStoreError, read_key_store
from acqkit.metrics import add_metrics_option, start_metrics
from acqkit.peerclient import PEER_RETRY_WINDOW_S, connect_within
from acqkit.rules import RuleBook, RuleError
from acqkit.runner import announce, run_service
from acqkit.serving import serving_for
from acqkit.tls import add_serving_arguments
from core_ledger.client import LedgerClient, LedgerUnavailable
from frontend.core import Context
from frontend.journal import MAX_INSTANCES, REVERSAL_DEAD, REVERSAL_PENDING, Journal
from frontend.registry import Registry, RegistryError
from frontend.schemelink import scheme_access
from frontend.server import Frontend, serve
from hsm_sim.client import HsmClient, HsmUnavailable
from merchant.client import HsmLinkSigner, MerchantClient, link_keys
from wallet.client import WalletClient
from wire.trace import TraceWriter


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action",
        nargs="?",
        choices=("serve", "journal"),
        default="serve",
        help="serve the front-end, or list the journal's reversals still owed or given up",
    )
    parser.add_argument("queue", nargs="?", choices=("pending", "dead-letters"), help="journal: which reversals")
    parser.add_argument("--json", action="store_true", help="journal: print JSON lines")
    parser.add_argument("--config", type=Path, help=CONFIG_HELP)
    parser.add_argument("--host", help="serve: the address to listen on (default: the configuration's)")
    parser.add_argument(
        "--port", type=port_number, help="serve: the port to listen on (default: the configuration's; 0: any)"
    )
    parser.add_argument("--wallet", help="serve: HOST:PORT of the wallet host for QR payments (default: none)")
    parser.add_argument(
        "--scheme",
        help="serve: HOST:PORT of the scheme switch: cards not on-us go there, by the configuration's [scheme] BIN "
        "table and with its zone keys from the key store (default: none, every card on-us)",
    )
    parser.add_argument(
        "--merchant-platform",
        help="serve: HOST:PORT of the merchant platform, told of each settled batch (default: none)",
    )
    parser.add_argument("--hsm", help="HOST:PORT of the HSM (default: the configuration's)")
    parser.add_argument("--ledger", help="HOST:PORT of the core ledger (default: the configuration's)")
    parser.add_argument("--db", help="journal SQLite path (default: the configuration's)")
    parser.add_argument("--key-store", type=Path, help="the key store (default: <data_dir>/keys/keystore.json)")
    parser.add_argument(
        "--peer-wait",
        type=float,
        default=PEER_RETRY_WINDOW_S,
        metavar="S",
        help="serve: keep trying to reach the HSM and the ledger for S seconds, then exit 3",
    )
    parser.add_argument(
        "--trace-dir", type=Path, help="append JSON-lines trace records to DIR/frontend.jsonl (frontend-K.jsonl)"
    )
    parser.add_argument(
        "--instance",
        type=int,
        metavar="K",
        help=f"serve: this front-end's number in a pool, 1–{MAX_INSTANCES}: the first digit of its RRN serials,"
        " so pool members never share an RRN (default: alone, seven-digit serials)",
    )
    parser.add_argument(
        "--rules", type=Path, help="scripted answers and faults (TOML, docs/rules.md); reloaded when it changes"
    )
    add_metrics_option(parser)
    add_serving_arguments(parser)


def show_journal(args: argparse.Namespace) -> int:
    """``acqsim frontend journal …``: read-only; refuses a journal that does not exist."""
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"acqsim frontend: {exc}", file=sys.stderr)
        return EXIT_USAGE
    path = Path(args.db or config.store_path(config.frontend.db))
    if args.queue is None or not path.is_file():
        why = "name a queue: pending or dead-letters" if args.queue is None else f"no journal at {path}"
        print(f"acqsim frontend journal: {why}", file=sys.stderr)
        return EXIT_USAGE
    journal = Journal(path)
    try:
        rows = journal.reversals(REVERSAL_DEAD if args.queue == "dead-letters" else REVERSAL_PENDING)
    finally:
        journal.close()
    for row in rows:
        if args.json:
            print(json.dumps(dataclasses.asdict(row)))
        else:
            print(
                f"#{row.id} terminal {row.terminal_id} STAN {row.stan} RRN {row.rrn} card {row.pan_masked} "
                f"amount {row.amount / 100:,.2f} tries {row.tries} last answer {row.last_code or '-'}"
            )
    if not args.json:
        print(f"{len(rows)} {args.queue.replace('-', ' ')}")
    return EXIT_DECLINED if args.queue == "dead-letters" and rows else EXIT_OK


def run(args: argparse.Namespace) -> int:
    if args.action == "journal":
        return show_journal(args)
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
        return EXIT_USAGE
    host = args.host or config.frontend.listen.host
    port = config.frontend.listen.port if args.port is None else args.port
    key_store = args.key_store or config.key_store_path
    try:
        keys = read_key_store(key_store)
        registry = Registry.from_key_store(config, keys, key_store)
        scheme = scheme_access(config, keys, Endpoint.parse(args.scheme)) if args.scheme else None
    except (KeyStoreError, RegistryError, ConfigError, ValueError) as exc:
        print(f"acqsim frontend: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        journal = Journal(args.db or config.store_path(config.frontend.db), instance=args.instance)
    except ValueError as exc:
        print(f"acqsim frontend: --instance: {exc}", file=sys.stderr)
        return EXIT_USAGE
    ctx = Context(registry=registry, scheme=scheme.route if scheme is not None else None)

    try:
        rules = RuleBook(args.rules, "frontend") if args.rules else None
    except RuleError as exc:
        print(f"acqsim frontend: --rules: {exc}", file=sys.stderr)
        journal.close()
        return 2
    unreachable: list[str] = []

    async def main() -> None:
        hsm: HsmClient | None = None
        try:
            hsm = await connect_within(
                functools.partial(HsmClient.connect, hsm_at.host, hsm_at.port, tls=serving.client_tls), args.peer_wait
            )
            ledger = await connect_within(
                functools.partial(LedgerClient.connect, ledger_at.host, ledger_at.port, tls=serving.client_tls),
                args.peer_wait,
            )
        except (HsmUnavailable, LedgerUnavailable) as exc:
            print(f"acqsim frontend: {exc} (still so after {args.peer_wait:g} s)", file=sys.stderr)
            unreachable.append(str(exc))
            if hsm is not None:
                await hsm.aclose()
            return
        link = scheme.link(hsm, serving.client_tls) if scheme is not None else None
        async with hsm, ledger, link or contextlib.nullcontext(), anyio.create_task_group() as tg:
            trace_at = args.trace_dir
            if trace_at is not None and args.instance is not None:  # one file per pool member, same service
                trace_at = trace_at / f"frontend-{args.instance}.jsonl"
            trace = TraceWriter(trace_at, "frontend")
            wallet = None
            if args.wallet:
                wallet_at = Endpoint.parse(args.wallet)
                wallet = WalletClient(wallet_at.host, wallet_at.port, tls=serving.client_tls)
            merchant = None
            if args.merchant_platform:
                merchant_at = Endpoint.parse(args.merchant_platform)
                signer = HsmLinkSigner(hsm, link_keys(keys))  # each notice signed as its terminal, in the HSM
                merchant = MerchantClient(merchant_at.host, merchant_at.port, tls=serving.client_tls, signer=signer)
            frontend = Frontend(
                ctx, journal, hsm, ledger, trace=trace, rules=rules, wallet=wallet, scheme=link, merchant=merchant
            )
            bound = await tg.start(functools.partial(serve, host, port, frontend=frontend, serving=serving))
            await start_metrics(tg, "frontend", host, args.metrics_port)
            print(serving.summary, flush=True)
            announce("frontend", host, bound)

    try:
        code = run_service(main)
    finally:
        journal.close()
    return EXIT_UNREACHABLE if unreachable else code
