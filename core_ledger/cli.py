"""``acqsim ledger``: run the core ledger, or look into its store.

acqsim ledger [serve] --db PATH|postgresql://URL [--host H] [--port P] [--config FILE] [--seed-demo|--no-seed]
              [--completion-tolerance PERCENT]
acqsim ledger balance PAN --db …
acqsim ledger statement PAN --db …
acqsim ledger check --db …                               every invariant over the whole store; exit 1 if any fails
acqsim ledger settle --db … --date YYYYMMDD --out FILE   close the business day, write the clearing report CSV

Exit codes: 0 ok, 1 the check found problems, 2 bad usage or the store cannot be used, 3 the store's database
server (postgresql://) cannot be reached, 74 (EXIT_FAIL_STOP in
acqkit/exitcodes.py, sysexits' EX_IOERR) serve stopped because a commit failed or hung: restart it (the supervisor
does), it reloads exactly the committed state from the store.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from decimal import Decimal
from pathlib import Path

import anyio

from acqkit.collector import freeze_survivors
from acqkit.config import CONFIG_HELP, AcqsimConfig, load_config, port_number, positive_count
from acqkit.exitcodes import EXIT_DECLINED, EXIT_FAIL_STOP, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE
from acqkit.metrics import add_metrics_option, start_metrics
from acqkit.rules import RuleBook, RuleError
from acqkit.runner import announce, leaves, run_service
from acqkit.serving import serving_for
from acqkit.tls import add_serving_arguments
from core_ledger.check import check_store
from core_ledger.engine import DEFAULT_COMPLETION_TOLERANCE
from core_ledger.history import RECENT_TXNS_KEPT
from core_ledger.service import LedgerFailStop
from core_ledger.settlement import plan_settlement, report_csv
from core_ledger.setup import open_service, open_store
from core_ledger.store import LedgerStore, StoreError, StoreUnavailable
from wire.masking import mask_pan
from wire.trace import TraceWriter


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action",
        nargs="?",
        choices=("serve", "balance", "statement", "check", "settle"),
        default="serve",
        help="serve the ledger; or look into its store: a card's balance or statement, an integrity check,"
        " or close a business day (settle)",
    )
    parser.add_argument("pan", nargs="?", help="balance/statement: the card number")
    parser.add_argument(
        "--db", help="SQLite file path or postgresql:// URL (default: the configuration's ledger store)"
    )
    parser.add_argument("--host", help="serve: the address to listen on (default: the configuration's)")
    parser.add_argument(
        "--port", type=port_number, help="serve: the port to listen on (default: the configuration's; 0: any)"
    )
    parser.add_argument("--config", type=Path, help=CONFIG_HELP)
    parser.add_argument("--trace-dir", type=Path, help="serve: append JSON-lines trace records to DIR/ledger.jsonl")
    add_metrics_option(parser)
    parser.add_argument(
        "--rules", type=Path, help="serve: scripted answers and faults (TOML, docs/rules.md); reloaded when it changes"
    )
    add_serving_arguments(parser)
    seeding = parser.add_mutually_exclusive_group()
    seeding.add_argument(
        "--seed-demo", action="store_true", help="add the configuration's demo cards and merchants (the default)"
    )
    seeding.add_argument("--no-seed", action="store_true", help="do not add the configuration's cards/merchants")
    parser.add_argument(
        "--completion-tolerance",
        type=Decimal,
        default=DEFAULT_COMPLETION_TOLERANCE * 100,
        metavar="PERCENT",
        help="serve: how far a completion may exceed its pre-authorisation (default %(default)s %%)",
    )
    parser.add_argument(
        "--keep-txns",
        type=positive_count,
        default=RECENT_TXNS_KEPT,
        metavar="N",
        help="serve: transactions kept in memory, the most recent (about 1.5 KB each); older ones are read from "
        "the store when a repeat, reversal, void or refund names them (default %(default)s)",
    )
    parser.add_argument("--date", help="settle: the business date to close, YYYYMMDD")
    parser.add_argument("--out", type=Path, help="settle: where to write the clearing report (CSV)")
    parser.add_argument(
        "--json", action="store_true", help="balance/statement/check/settle: print the result as one JSON object"
    )


#: How a statement line shows a posting forced by a scheme's stand-in advice (docs/ledger.md).
FORCED_MARK = "FORCED (stand-in advice)"


def _money(minor: int) -> str:
    return f"{minor / 100:,.2f}"


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    db = args.db or config.store_path(config.ledger.db)
    try:
        if args.action == "serve":
            return _serve(args, db, config)
        if "://" not in db and not Path(db).is_file():  # looking must never create a store
            print(f"acqsim ledger {args.action}: no ledger store at {db}", file=sys.stderr)
            return EXIT_USAGE
        store = open_store(db)
        try:
            return _inspect(args, store)
        finally:
            store.close()
    except StoreUnavailable as exc:
        print(f"acqsim ledger: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except StoreError as exc:
        print(f"acqsim ledger: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _inspect(args: argparse.Namespace, store: LedgerStore) -> int:
    if args.action == "settle":
        return _settle(args, store)
    if args.action == "check":
        problems = check_store(store)
        if args.json:
            print(json.dumps({"ok": not problems, "problems": [str(p) for p in problems]}))
        else:
            for problem in problems:
                print(f"FAIL {problem}")
            print("ledger check: ok" if not problems else f"ledger check: {len(problems)} problem(s)")
        return EXIT_OK if not problems else EXIT_DECLINED
    state = store.load()
    if not args.pan or args.pan not in state.cards:
        print("acqsim ledger: unknown card", file=sys.stderr)
        return EXIT_USAGE
    card = state.cards[args.pan]
    account = state.accounts[card.account_id]
    lines: list[tuple[int, int, str, bool]] = []  # (seq, amount in minor units, what, forced)
    if args.action == "statement":
        for entry in store.entries(card.account_id):
            txn = state.txns.get(entry.txn_key)
            what = f"{txn.op} {txn.business_date} rrn {txn.rrn.strip()}" if txn else entry.txn_key
            forced = txn is not None and txn.forced
            lines.append((entry.seq, entry.amount, what + (f" {FORCED_MARK}" if forced else ""), forced))
    if args.json:
        summary = {"card": mask_pan(card.pan), "account": account.account_id, "status": str(card.status)}
        money = {"balance": account.balance, "held": account.held, "available": account.available}
        entries = [
            {"seq": seq, "amount": amount, "what": what, "forced": forced} for seq, amount, what, forced in lines
        ]
        print(json.dumps({**summary, **money, **({"entries": entries} if args.action == "statement" else {})}))
        return EXIT_OK
    print(f"card {mask_pan(card.pan)} account {account.account_id} ({card.status})")
    print(f"balance {_money(account.balance)}  held {_money(account.held)}  available {_money(account.available)}")
    for seq, amount, what, _ in lines:
        print(f"{seq:>8}  {_money(amount):>14}  {what}")
    return EXIT_OK


def _settle(args: argparse.Namespace, store: LedgerStore) -> int:
    if not args.date or not args.out:
        print("acqsim ledger settle: --date YYYYMMDD and --out FILE are required", file=sys.stderr)
        return 2
    try:
        run = plan_settlement(store.load(), args.date)
    except ValueError as exc:
        print(f"acqsim ledger settle: {exc}", file=sys.stderr)
        return 2
    store.commit(run.postings, settled=run.settled_keys)
    args.out.write_text(report_csv(run), encoding="utf-8")
    if args.json:
        merchants = [
            {
                "merchant": line.merchant.merchant_id,
                "settlement": str(line.merchant.settlement),
                "net": line.net,
                "fee": line.fee,
                "payout": line.payout,
                "paid_to": line.paid_to,
            }
            for line in run.lines
        ]
        report = {"date": args.date, "run": run.run, "transactions": len(run.settled_keys), "report": str(args.out)}
        print(json.dumps({**report, "merchants": merchants, "unknown_merchants": list(run.unknown_merchants)}))
        return EXIT_OK
    for line in run.lines:
        print(
            f"{line.merchant.merchant_id} {line.merchant.settlement:<9} net {_money(line.net):>14} "
            f"fee {_money(line.fee):>10} pay {_money(line.payout):>14} to {line.paid_to}"
        )
    for merchant_id in run.unknown_merchants:
        print(f"WARNING transactions of unknown merchant {merchant_id!r} left unsettled")
    print(f"settled {args.date} run {run.run}: {len(run.settled_keys)} transaction(s), report {args.out}")
    return 0


def _serve(args: argparse.Namespace, db: str, config: AcqsimConfig) -> int:
    from core_ledger.server import serve

    tolerance: Decimal = args.completion_tolerance
    if not tolerance.is_finite() or tolerance < 0:
        print("acqsim ledger: --completion-tolerance must be a percentage >= 0", file=sys.stderr)
        return 2
    service = open_service(
        db, None if args.no_seed else config, completion_tolerance=tolerance / 100, keep_txns=args.keep_txns
    )
    host = args.host or config.ledger.listen.host
    port = config.ledger.listen.port if args.port is None else args.port
    try:
        serving = serving_for(
            "ledger",
            tls_dir=args.tls_dir,
            max_connections=args.max_connections,
            config=config,
            configured_max=config.ledger.max_connections,
        )
    except (ValueError, OSError) as exc:
        print(f"acqsim ledger: {exc}", file=sys.stderr)
        service.store.close()
        return 2

    try:
        rules = RuleBook(args.rules, "ledger") if args.rules else None
    except RuleError as exc:
        print(f"acqsim ledger: --rules: {exc}", file=sys.stderr)
        service.store.close()
        return 2
    stopped: list[LedgerFailStop] = []

    async def main() -> None:
        try:
            async with anyio.create_task_group() as tg:
                trace = TraceWriter(args.trace_dir, "ledger")
                serving_ledger = functools.partial(
                    serve, host, port, service=service, trace=trace, serving=serving, rules=rules
                )
                bound = await tg.start(serving_ledger)
                tg.start_soon(freeze_survivors)  # its kept transactions stay out of the collector's full passes
                await start_metrics(tg, "ledger", host, args.metrics_port)
                print(serving.summary, flush=True)
                announce("ledger", host, bound, objects_die_young=False)  # it keeps recent transactions
        except* LedgerFailStop as group:
            stopped.extend(leaves(group, LedgerFailStop))

    try:
        code = run_service(main)
    finally:
        service.store.close()
    if stopped:
        print(f"acqsim ledger: {stopped[0]}; exiting for a restart from the store", file=sys.stderr)
        return EXIT_FAIL_STOP
    return code
