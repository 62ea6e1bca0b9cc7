"""``acqsim wallet``: run the wallet host, or act as the consumer's wallet app.

    acqsim wallet serve [--listen HOST:PORT] [--db FILE] [--tls-dir DIR] [--max-connections N]
                                                             the wallet host (prints READY wallet HOST:PORT)
    acqsim wallet code [--account ID]                        a one-time payment code (被扫: show it to the till)
    acqsim wallet pay ORDER|QR [--account ID]                pay a merchant's order QR (主扫)
    acqsim wallet confirm VOUCHER [--account ID] [--password P]   enter the password a large payment waits for
    acqsim wallet balance [--account ID]

``acqsim wallet settle`` (end of day: the takings posted into the ledger) is served by acqsim/wallet_settle.py,
because it writes the ledger's store too (a service must not import another).

The accounts are TEST accounts (``TEST-UNIONPAY-1``, ``TEST-WECHAT-1``, ``TEST-ALIPAY-1``), each opened with
5,000.00 CNY and the TEST password ``123456``. ``--json`` prints the answer as one JSON object. Exit codes
(acqkit/exitcodes.py): 0 done, 1 refused, 2 usage, 3 the wallet host unreachable or silent.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path
from typing import Final

import anyio

from acqkit.config import ConfigError, Endpoint, load_config
from acqkit.exitcodes import EXIT_DECLINED, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE
from acqkit.runner import announce, run_service
from acqkit.serving import serving_for
from acqkit.tls import add_serving_arguments
from wallet.client import DEFAULT_WALLET, WalletClient, WalletError
from wallet.core import QR_CONTENT_PREFIX, order_of_qr
from wallet.seed import DEFAULT_ACCOUNT, TEST_PASSWORD
from wallet.server import WalletHost, serve
from wallet.store import WalletStore
from wire.errors import MessageDecodeError
from wire.field59 import mask_code
from wire.tlvlink import LinkMessage
from wire.walletlink import Kind

ACTIONS: Final = ("serve", "code", "pay", "confirm", "balance")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=ACTIONS, help="serve the wallet host, or one wallet-app action")
    parser.add_argument("target", nargs="?", help="pay: the order number or QR content; confirm: the voucher")
    parser.add_argument("--config", type=Path, help="configuration file (default: built-in TEST configuration)")
    parser.add_argument("--listen", help=f"serve: HOST:PORT to listen on (default: [wallet], {DEFAULT_WALLET})")
    parser.add_argument("--db", help="serve: the wallet store (default: [wallet] db in the data directory)")
    parser.add_argument("--wallet", help=f"app actions: HOST:PORT of the wallet host (default {DEFAULT_WALLET})")
    parser.add_argument("--account", default=DEFAULT_ACCOUNT, help=f"wallet account (default {DEFAULT_ACCOUNT})")
    parser.add_argument("--password", default=TEST_PASSWORD, help="confirm: the wallet password (default TEST)")
    parser.add_argument("--show-code", action="store_true", help="code: print the whole code (default masked)")
    parser.add_argument("--json", action="store_true", help="print the answer as one JSON object")
    add_serving_arguments(parser)


def _request(args: argparse.Namespace) -> LinkMessage:
    if args.action == "code":
        return LinkMessage.of(Kind.CODE, CA=args.account)
    if args.action == "balance":
        return LinkMessage.of(Kind.BALANCE, CA=args.account)
    if not args.target:
        raise ValueError(f"wallet {args.action} needs the {'order' if args.action == 'pay' else 'voucher'}")
    if args.action == "pay":
        order = order_of_qr(args.target) if args.target.startswith(QR_CONTENT_PREFIX) else args.target
        return LinkMessage.of(Kind.PAY_ORDER, CA=args.account, QO=order)
    return LinkMessage.of(Kind.CONFIRM, CA=args.account, A4=args.target, PW=args.password)


def _printed(answer: LinkMessage, *, show_code: bool) -> dict[str, str]:
    shown = answer.as_dict()
    if "A3" in shown and not show_code:
        shown["A3"] = mask_code(shown["A3"])
    return shown


async def _app(args: argparse.Namespace) -> int:
    endpoint = Endpoint.parse(args.wallet) if args.wallet else DEFAULT_WALLET
    request = _request(args)
    try:
        async with WalletClient(endpoint.host, endpoint.port) as client:
            answer = await client.request(request)
    except WalletError as exc:
        print(f"acqsim wallet {args.action}: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    shown = _printed(answer, show_code=args.show_code)
    if args.json:
        print(json.dumps(shown))
    else:
        print(" ".join(f"{tag}={value}" for tag, value in shown.items()))
    return EXIT_OK if answer.result in ("00", "09") else EXIT_DECLINED


async def _serve(args: argparse.Namespace) -> None:
    config = load_config(args.config)
    listen = Endpoint.parse(args.listen) if args.listen else config.wallet.listen
    serving = serving_for(
        "wallet",
        tls_dir=args.tls_dir,
        max_connections=args.max_connections,
        config=config,
        configured_max=config.wallet.max_connections,
    )
    store = WalletStore(args.db or config.store_path(config.wallet.db))
    try:
        host = WalletHost(store)
        async with anyio.create_task_group() as tg:
            port = await tg.start(functools.partial(serve, listen.host, listen.port, wallet=host, serving=serving))
            print(serving.summary, flush=True)
            announce("wallet", listen.host, port)
    finally:
        store.close()


def run(args: argparse.Namespace) -> int:
    try:
        if args.action == "serve":
            return run_service(functools.partial(_serve, args))
        return anyio.run(_app, args)
    except (ConfigError, ValueError, OSError, MessageDecodeError) as exc:
        print(f"acqsim wallet: {exc}", file=sys.stderr)
        return EXIT_USAGE
