"""``acqsim ledger``: run the core ledger, or look into its store.

acqsim ledger [serve] --db PATH [--host H] [--port P] [--config FILE] [--no-seed]
acqsim ledger balance PAN --db PATH
acqsim ledger statement PAN --db PATH
acqsim ledger check --db PATH          every invariant over the whole store; exit 1 if any fails
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

import anyio

from acqsim.config import AcqsimConfig, load_config
from acqsim.runner import announce, run_service
from core_ledger.check import check_store
from core_ledger.setup import open_service, open_store
from core_ledger.store import StoreError
from wire.masking import mask_pan


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=("serve", "balance", "statement", "check"), default="serve")
    parser.add_argument("pan", nargs="?", help="balance/statement: the card number")
    parser.add_argument("--db", help="SQLite path (default: the configuration's ledger store)")
    parser.add_argument("--host", default=None)
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--config", type=Path, help="acqsim TOML configuration (default: built-in)")
    parser.add_argument("--no-seed", action="store_true", help="do not add the configuration's cards/merchants")


def _money(minor: int) -> str:
    return f"{minor / 100:,.2f}"


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    db = args.db or config.store_path(config.ledger.db)
    try:
        if args.action == "serve":
            return _serve(args, db, config)
        store = open_store(db)
        if args.action == "check":
            problems = check_store(store)
            for problem in problems:
                print(f"FAIL {problem}")
            print("ledger check: ok" if not problems else f"ledger check: {len(problems)} problem(s)")
            return 0 if not problems else 1
        state = store.load()
        if not args.pan or args.pan not in state.cards:
            print("acqsim ledger: unknown card", file=sys.stderr)
            return 2
        card = state.cards[args.pan]
        account = state.accounts[card.account_id]
        print(f"card {mask_pan(card.pan)} account {account.account_id} ({card.status})")
        print(f"balance {_money(account.balance)}  held {_money(account.held)}  available {_money(account.available)}")
        if args.action == "statement":
            for entry in store.entries(card.account_id):
                txn = state.txns.get(entry.txn_key)
                what = f"{txn.op} {txn.business_date} rrn {txn.rrn.strip()}" if txn else entry.txn_key
                print(f"{entry.seq:>8}  {_money(entry.amount):>14}  {what}")
        return 0
    except StoreError as exc:
        print(f"acqsim ledger: {exc}", file=sys.stderr)
        return 2


def _serve(args: argparse.Namespace, db: str, config: AcqsimConfig) -> int:
    from core_ledger.server import serve

    service = open_service(db, None if args.no_seed else config)
    host = args.host or config.ledger.listen.host
    port = config.ledger.listen.port if args.port is None else args.port

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            bound = await tg.start(functools.partial(serve, host, port, service=service))
            announce("ledger", host, bound)

    try:
        return run_service(main)
    finally:
        service.store.close()
