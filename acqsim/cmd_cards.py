"""``acqsim cards list | issue``: the virtual TEST cards.

    acqsim cards list [--config FILE]
    acqsim cards issue --count N [--balance YUAN] [--out FILE] [--ledger-db PATH] [--config FILE]

``issue`` writes the new cards as TOML ``[[cards]]`` tables (append them to a configuration) and, with
``--ledger-db``, opens their accounts in that ledger store with the given balance.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from acqkit.amounts import parse_amount
from acqkit.config import load_config
from core_ledger.seed import CardSeed
from core_ledger.setup import open_store, seed
from terminal.cards import issue_cards, luhn_valid
from wire.masking import mask_pan


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("list", "issue"))
    parser.add_argument("--config", type=Path)
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--balance", default="1000.00", help="opening balance in yuan")
    parser.add_argument("--out", type=Path, help="write the cards as TOML [[cards]] tables here")
    parser.add_argument("--ledger-db", help="also open the cards' accounts in this ledger store")


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if args.action == "list":
        print("TEST cards (test material, printed on purpose):")
        for card in config.cards:
            check = "ok" if luhn_valid(card.pan) else "BAD LUHN"
            print(
                f"  {card.pan:<19} exp {card.expiry} PIN {card.pin} PVV {card.pvv} {card.status:<7} "
                f"{card.balance / 100:>12,.2f}  Luhn {check}  track2 {card.track2}"
            )
        return 0
    if not 1 <= args.count <= 100_000:
        print("acqsim cards issue: --count must be 1..100000", file=sys.stderr)
        return 2
    try:
        balance = parse_amount(args.balance)
    except ValueError as exc:
        print(f"acqsim cards issue: {exc}", file=sys.stderr)
        return 2
    cards = list(
        issue_cards(args.count, pvk=bytes.fromhex(config.pvk), balance=balance, taken={c.pan for c in config.cards})
    )
    toml = "".join(
        f'\n[[cards]]\npan = "{c.pan}"\nexpiry = "{c.expiry}"\npin = "{c.pin}"\npvki = "{c.pvki}"\n'
        f'pvv = "{c.pvv}"\nbalance = {c.balance}\nholder = "{c.holder}"\nnote = "{c.note}"\n'
        for c in cards
    )
    if args.out:
        args.out.write_text(toml, encoding="utf-8")
        print(f"{len(cards)} TEST card(s) written to {args.out}")
    else:
        print(toml)
    if args.ledger_db:
        store = open_store(args.ledger_db)
        try:
            added = seed(
                store,
                store.load(),
                cards=[CardSeed(pan=c.pan, expiry=c.expiry, balance=c.balance, holder=c.holder) for c in cards],
            )
        finally:
            store.close()
        print(
            f"{added} account(s) opened in {args.ledger_db}: "
            + ", ".join(mask_pan(c.pan) for c in cards[:5])
            + (" …" if len(cards) > 5 else "")
        )
    return 0
