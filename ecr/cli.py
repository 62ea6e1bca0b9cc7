"""``acqsim ecr``: a cash register beside a card terminal.

    acqsim ecr sale [AMOUNT] [--item NAME:PRICE[xQTY]]... [--coupon CODE] [--cash]
                    [--link HOST:PORT] [--platform HOST:PORT]
    acqsim ecr void REF [--link HOST:PORT]
    acqsim ecr status [REF] [--link HOST:PORT]

``sale`` rings up the items (and/or an open AMOUNT in yuan), takes a coupon's discount off the basket, then
asks the terminal's ECR link (``acqsim pos ecr-link``) to charge the card — or, with ``--cash``, takes cash
without a terminal (register-only mode) — prints the till slip, and records the sale with the merchant
platform when ``--platform`` is given. Exit codes (acqkit/exitcodes.py): 0 approved / done, 1 declined,
2 usage, 3 the terminal unreachable or silent.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Final

import anyio

from acqkit.config import AcqsimConfig, ConfigError, Endpoint, load_config
from acqkit.exitcodes import EXIT_DECLINED, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE
from acqkit.tlvclient import LinkError
from ecr.register import ring_up, slip
from ecr.till import Till
from merchant.client import terminal_signer
from wire.ecrlink import DEFAULT_ECR_LINK_PORT

DEFAULT_LINK: Final = Endpoint(host="127.0.0.1", port=DEFAULT_ECR_LINK_PORT)
ACTIONS: Final = ("sale", "void", "status")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=ACTIONS, help="sell a basket, void a sale, or ask the terminal's state")
    parser.add_argument("value", nargs="?", help="sale: open amount in yuan; void, status: the sale's reference")
    parser.add_argument("--item", action="append", default=[], help="NAME:PRICE or NAME:PRICExQTY (repeatable)")
    parser.add_argument("--coupon", help="sale: a coupon code to redeem on the basket (needs --platform)")
    parser.add_argument("--cash", action="store_true", help="sale: paid in cash, no terminal (register-only mode)")
    parser.add_argument("--link", help=f"HOST:PORT of the terminal's ECR link (default {DEFAULT_LINK})")
    parser.add_argument("--platform", help="HOST:PORT of the merchant platform, to record sales and redeem coupons")
    parser.add_argument("--config", type=Path, help="configuration file (default: built-in TEST configuration)")
    parser.add_argument("--terminal", help="the terminal id sales are recorded under (default: the first configured)")
    parser.add_argument("--json", action="store_true", help="print the terminal's answer as one JSON object")


def _till(args: argparse.Namespace, config: AcqsimConfig) -> Till:
    terminal = config.terminal(args.terminal) if args.terminal else config.terminals[0]
    return Till(
        merchant_id=terminal.merchant_id,
        terminal_id=terminal.terminal_id,
        link=None if args.cash else (Endpoint.parse(args.link) if args.link else DEFAULT_LINK),
        platform=Endpoint.parse(args.platform) if args.platform else None,
        platform_signer=terminal_signer(config, terminal.terminal_id),
    )


async def _sale(args: argparse.Namespace, till: Till) -> int:
    basket = ring_up(args.item, amount=args.value, till_id=till.terminal_id)
    if args.coupon:
        basket, coupon = await till.redeem_coupon(basket, args.coupon)
        if coupon.result != "00":
            print(f"coupon refused: {coupon.result} {coupon.get('TX') or ''}", file=sys.stderr)
    result = await till.sell(basket, cash=args.cash)
    answer = result.answer
    if args.json:
        print(
            json.dumps(
                {
                    "reference": basket.reference,
                    "total": basket.total,
                    "method": result.method,
                    "result": result.result,
                    "recorded": result.recorded,
                    **(answer.as_dict() if answer else {}),
                }
            )
        )
    else:
        detail = ""
        if answer is not None:
            detail = " ".join(f"{tag}={answer.get(tag)}" for tag in ("PM", "RR", "AC", "ST") if answer.get(tag))
        words = (answer.get("TX") if answer else None) or "cash taken"
        print(
            slip(basket, method=result.method, result=f"{result.result} {words}", when=dt.datetime.now(), detail=detail)
        )
        if args.platform and result.approved and not result.recorded:
            print("(the merchant platform did not take the sale record)")
    return EXIT_OK if result.approved else EXIT_DECLINED


async def _run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    till = _till(args, config)
    try:
        if args.action == "sale":
            return await _sale(args, till)
        if args.action == "void" and not args.value:
            raise ValueError("ecr void needs the sale's reference")
        answer = await (till.void(args.value) if args.action == "void" else till.status(args.value))
        shown = answer.as_dict()
        print(json.dumps(shown) if args.json else " ".join(f"{tag}={value}" for tag, value in shown.items()))
        return EXIT_OK if answer.result == "00" else EXIT_DECLINED
    except LinkError as exc:
        print(f"acqsim ecr {args.action}: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    finally:
        await till.aclose()


def run(args: argparse.Namespace) -> int:
    try:
        return anyio.run(_run, args)
    except (ConfigError, ValueError) as exc:
        print(f"acqsim ecr: {exc}", file=sys.stderr)
        return EXIT_USAGE
