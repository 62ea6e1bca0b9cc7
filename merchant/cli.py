"""``acqsim merchant``: run the merchant platform, use its apps from the command line, or report on sales.

    acqsim merchant serve [--listen HOST:PORT] [--db FILE]      the platform (prints READY merchant HOST:PORT;
                          [--tls-dir DIR] [--max-connections N]  mutual TLS under tls = true; under [merchant]
                          [--hsm HOST:PORT] [--key-store PATH]   authenticate = true, MACs verified in the HSM)
    acqsim merchant report [--db FILE] [--json] [--plot FILE]   sales by hour and method, average ticket, top items
    acqsim merchant coupon-issue DISCOUNT [--min-spend A]       a coupon worth DISCOUNT yuan
    acqsim merchant coupon-redeem CODE BASKET --ref R           the discount off a basket (once)
    acqsim merchant voucher-sell DEAL PRICE                     the group-buy platform sells a voucher
    acqsim merchant voucher-verify CODE --ref R                 verify and use a voucher at the till
    acqsim merchant voucher-settle                              settle the verified vouchers
    acqsim merchant notice-push KIND TEXT [--terminal ID]       push a notice (SETTLEMENT, PARAMETERS, CHARGEBACK, ...)
    acqsim merchant notices [--terminal ID]                     a terminal's notices, newest first
    acqsim merchant chargeback RRN AMOUNT [--terminal ID]       the acquirer's chargeback notice (once per RRN)
    acqsim merchant parameters VERSION [--terminal ID]          a new parameter version's notice (once per version)
    acqsim merchant member-join PHONE | member-find PHONE       members by phone

``--merchant-id`` defaults to the first configured merchant. Exit codes (acqkit/exitcodes.py): 0 done,
1 refused, 2 usage, 3 the platform unreachable or silent.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import sys
from pathlib import Path
from typing import Final

import anyio

from acqkit.amounts import parse_amount, yuan
from acqkit.config import AcqsimConfig, ConfigError, Endpoint, load_config
from acqkit.exitcodes import EXIT_DECLINED, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE
from acqkit.keystore import KeyStoreError, read_key_store
from acqkit.peerclient import PEER_RETRY_WINDOW_S, PeerError, connect_within
from acqkit.runner import announce, run_service
from acqkit.serving import serving_for
from acqkit.tls import add_serving_arguments
from hsm_sim.client import HsmClient
from merchant.analytics import plot, report, text
from merchant.client import DEFAULT_MERCHANT, MerchantClient, MerchantError, link_keys, terminal_signer
from merchant.server import HsmLinkVerifier, MerchantHost, serve
from merchant.store import MerchantStore, MerchantStoreError
from wire.merchantlink import NOTICE_CHARGEBACK, NOTICE_PARAMETERS, MerchantKind
from wire.tlvlink import LinkMessage

ACTIONS: Final = (
    "serve",
    "report",
    "coupon-issue",
    "coupon-redeem",
    "voucher-sell",
    "voucher-verify",
    "voucher-settle",
    "notice-push",
    "notices",
    "chargeback",
    "parameters",
    "member-join",
    "member-find",
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=ACTIONS, help="serve the platform, report on sales, or use one of its apps")
    parser.add_argument("values", nargs="*", help="the action's arguments (see acqsim merchant --help)")
    parser.add_argument("--config", type=Path, help="configuration file (default: built-in TEST configuration)")
    parser.add_argument("--listen", help=f"serve: HOST:PORT to listen on (default: [merchant], {DEFAULT_MERCHANT})")
    parser.add_argument("--db", help="serve, report: the platform's store (default: [merchant] db in the data dir)")
    parser.add_argument("--hsm", help="serve: HOST:PORT of the HSM that verifies request MACs (default: [hsm])")
    parser.add_argument("--key-store", type=Path, help="serve: the key store (default: <data_dir>/keys/keystore.json)")
    parser.add_argument("--platform", help=f"HOST:PORT of the merchant platform (default {DEFAULT_MERCHANT})")
    parser.add_argument("--merchant-id", help="merchant id (default: the first configured merchant)")
    parser.add_argument("--terminal", help="terminal id (notices for one terminal)")
    parser.add_argument("--ref", help="the till's reference for the basket (coupon-redeem, voucher-verify)")
    parser.add_argument("--min-spend", help="coupon-issue: the basket must reach this many yuan")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--plot", type=Path, help="report: write the chart as PNG here (needs acqsim[plot])")
    add_serving_arguments(parser)


def _need(args: argparse.Namespace, count: int, what: str) -> list[str]:
    if len(args.values) != count:
        raise ValueError(f"merchant {args.action} needs {what}")
    return list(args.values)


def _request(args: argparse.Namespace, merchant_id: str) -> LinkMessage:
    k, action = MerchantKind, args.action
    if action == "coupon-issue":
        [discount] = _need(args, 1, "DISCOUNT")
        min_spend = parse_amount(args.min_spend) if args.min_spend else None
        return LinkMessage.of(k.COUPON_ISSUE, MI=merchant_id, DA=parse_amount(discount), MS=min_spend)
    if action == "coupon-redeem":
        code, basket = _need(args, 2, "CODE BASKET")
        return LinkMessage.of(k.COUPON_REDEEM, MI=merchant_id, CP=code, AM=parse_amount(basket), ER=args.ref or "cli")
    if action == "voucher-sell":
        deal, price = _need(args, 2, "DEAL PRICE")
        return LinkMessage.of(k.VOUCHER_SELL, MI=merchant_id, NM=deal, AM=parse_amount(price))
    if action == "voucher-verify":
        [code] = _need(args, 1, "CODE")
        return LinkMessage.of(k.VOUCHER_VERIFY, MI=merchant_id, GV=code, ER=args.ref or "cli")
    if action == "voucher-settle":
        return LinkMessage.of(k.VOUCHER_SETTLE, MI=merchant_id)
    if action == "notice-push":
        kind, words = _need(args, 2, "KIND TEXT")
        return LinkMessage.of(k.NOTICE_PUSH, MI=merchant_id, MK=kind.upper(), TX=words, TI=args.terminal)
    if action == "chargeback":
        rrn, amount = _need(args, 2, "RRN AMOUNT")
        words = f"chargeback of {yuan(parse_amount(amount))} CNY on RRN {rrn}"
        return LinkMessage.of(
            k.NOTICE_PUSH, MI=merchant_id, MK=NOTICE_CHARGEBACK, TX=words, TI=args.terminal, NK=f"CB {rrn}"
        )
    if action == "parameters":
        [version] = _need(args, 1, "VERSION")
        words = f"parameter version {version} is ready to download"
        return LinkMessage.of(
            k.NOTICE_PUSH, MI=merchant_id, MK=NOTICE_PARAMETERS, TX=words, TI=args.terminal, NK=f"PARAM {version}"
        )
    if action == "notices":
        return LinkMessage.of(k.NOTICE_LIST, MI=merchant_id, TI=args.terminal)
    [phone] = _need(args, 1, "PHONE")
    kind = k.MEMBER_JOIN if action == "member-join" else k.MEMBER_FIND
    return LinkMessage.of(kind, MI=merchant_id, PH=phone)


async def _app(args: argparse.Namespace, config: AcqsimConfig) -> int:
    endpoint = Endpoint.parse(args.platform) if args.platform else DEFAULT_MERCHANT
    request = _request(args, args.merchant_id or config.merchants[0].merchant_id)
    try:
        signer = terminal_signer(config, args.terminal)  # TEST: the CLI signs as that terminal
        async with MerchantClient(endpoint.host, endpoint.port, signer=signer) as client:
            answer = await client.request(request)
    except MerchantError as exc:
        print(f"acqsim merchant {args.action}: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    shown = answer.as_dict()
    print(json.dumps(shown) if args.json else " ".join(f"{tag}={value}" for tag, value in shown.items()))
    return EXIT_OK if answer.result == "00" else EXIT_DECLINED


def _report(args: argparse.Namespace, config: AcqsimConfig) -> int:
    store = MerchantStore(args.db or config.store_path(config.merchant_platform.db))
    try:
        book = store.load()
    finally:
        store.close()
    rep = report(book.sales().values(), args.merchant_id or config.merchants[0].merchant_id)
    print(json.dumps(rep.as_json()) if args.json else text(rep))
    if args.plot:
        plot(rep, str(args.plot))
        if not args.json:
            print(f"chart written to {args.plot}")
    return EXIT_OK


async def _serve(args: argparse.Namespace, config: AcqsimConfig, unreachable: list[str]) -> None:
    listen = Endpoint.parse(args.listen) if args.listen else config.merchant_platform.listen
    serving = serving_for(
        "merchant",
        tls_dir=args.tls_dir,
        max_connections=args.max_connections,
        config=config,
        configured_max=config.merchant_platform.max_connections,
    )
    store = MerchantStore(args.db or config.store_path(config.merchant_platform.db))
    try:
        async with anyio.create_task_group() as tg, contextlib.AsyncExitStack() as stack:
            verifier = None
            if config.merchant_platform.authenticate:
                hsm_at = Endpoint.parse(args.hsm) if args.hsm else config.hsm.listen
                keys = read_key_store(args.key_store or config.key_store_path)
                connect_hsm = functools.partial(HsmClient.connect, hsm_at.host, hsm_at.port, tls=serving.client_tls)
                try:
                    hsm = await stack.enter_async_context(await connect_within(connect_hsm, PEER_RETRY_WINDOW_S))
                except PeerError as exc:
                    print(f"acqsim merchant: {exc}: cannot verify requests", file=sys.stderr)
                    unreachable.append(str(exc))
                    return
                verifier = HsmLinkVerifier(hsm, link_keys(keys))
                print(f"requests must be signed: {len(verifier.keys)} terminal key(s), verified in the HSM", flush=True)
            host = MerchantHost(store, verifier=verifier)
            port = await tg.start(functools.partial(serve, listen.host, listen.port, platform=host, serving=serving))
            print(serving.summary, flush=True)
            announce("merchant", listen.host, port)
    finally:
        store.close()


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
        if args.action == "serve":
            unreachable: list[str] = []
            code = run_service(functools.partial(_serve, args, config, unreachable))
            return EXIT_UNREACHABLE if unreachable else code
        if args.action == "report":
            return _report(args, config)
        return anyio.run(_app, args, config)
    except (ConfigError, ValueError, OSError, MerchantStoreError, KeyStoreError) as exc:
        print(f"acqsim merchant: {exc}", file=sys.stderr)
        return EXIT_USAGE
