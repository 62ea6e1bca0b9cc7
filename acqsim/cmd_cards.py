"""``acqsim cards list | issue``: the virtual TEST cards.

    acqsim cards list [--config FILE]
    acqsim cards issue --count N [--balance YUAN] [--out FILE] [--ledger-db PATH] [--config FILE]

``issue`` writes the new cards as TOML ``[[cards]]`` tables (append them to a configuration) and, with
``--ledger-db``, opens their accounts in that ledger store with the given balance.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from acqkit.config import CONFIG_HELP, CardFixture, load_config
from core_ledger.seed import CardSeed
from core_ledger.setup import open_store, seed
from terminal.cards import issue_cards, luhn_valid
from terminal.cli import parse_amount
from wire.masking import mask_pan

#: Said beside every card list: the PINs and PVVs are test material, printed on purpose.
TEST_NOTE = "TEST cards (test material, printed on purpose)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("list", "issue"), help="list the configured TEST cards, or issue new ones")
    parser.add_argument("--config", type=Path, help=CONFIG_HELP)
    parser.add_argument("--count", type=int, default=1, help="issue: how many cards, 1..100000")
    parser.add_argument("--balance", default="1000.00", help="opening balance in yuan")
    parser.add_argument("--out", type=Path, help="write the cards as TOML [[cards]] tables here")
    parser.add_argument("--ledger-db", help="also open the cards' accounts in this ledger store")
    parser.add_argument("--json", action="store_true", help="print the cards (TEST material) as one JSON object")


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if args.action == "list":
        if args.json:
            print(json.dumps({"note": TEST_NOTE, "cards": [_card_json(card) for card in config.cards]}))
            return 0
        print(f"{TEST_NOTE}:")
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
        if not args.json:
            print(f"{len(cards)} TEST card(s) written to {args.out}")
    elif not args.json:
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
    if args.json:
        opened = {"ledger_accounts_opened": added} if args.ledger_db else {}
        print(json.dumps({"note": TEST_NOTE, "cards": [_card_json(card) for card in cards], **opened}))
    elif args.ledger_db:
        print(
            f"{added} account(s) opened in {args.ledger_db}: "
            + ", ".join(mask_pan(c.pan) for c in cards[:5])
            + (" …" if len(cards) > 5 else "")
        )
    return 0


def _card_json(card: CardFixture) -> dict[str, object]:
    fields = ("pan", "expiry", "pin", "pvki", "pvv", "status", "balance", "holder", "note")
    return {**{name: getattr(card, name) for name in fields}, "luhn_ok": luhn_valid(card.pan), "track2": card.track2}
