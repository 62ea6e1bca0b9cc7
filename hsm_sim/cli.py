"""``acqsim hsm``: run the HSM simulator, or put a clear TEST key under the LMK for a configuration file."""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

import anyio

from acqkit.runner import announce, run_service
from acqkit.serving import serving_for
from acqkit.tls import add_serving_arguments
from hsm_sim.keys import DEFAULT_TEST_LMK, KeyParityError, KeyType, Lmk, encrypt_under_lmk
from wire.paycrypto import CryptoInputError, key_check_value
from wire.trace import TraceWriter


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=("serve", "encrypt-key"), default="serve")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1500)
    parser.add_argument("--lmk", default="TEST", help="TEST (the documented test LMK) or 32 hex characters")
    parser.add_argument("--trace-dir", type=Path, help="append JSON-lines trace records to DIR/hsm.jsonl")
    parser.add_argument("--type", choices=[t.value for t in KeyType], help="encrypt-key: the key's type")
    parser.add_argument("--clear", help="encrypt-key: the clear TEST key, 32 hex characters")
    add_serving_arguments(parser)


def lmk_from_arg(text: str) -> Lmk:
    return DEFAULT_TEST_LMK if text.upper() == "TEST" else Lmk.from_hex(text)


def run(args: argparse.Namespace) -> int:
    try:
        lmk = lmk_from_arg(args.lmk)
    except CryptoInputError as exc:
        print(f"acqsim hsm: --lmk: {exc}", file=sys.stderr)
        return 2
    if args.action == "encrypt-key":
        if not args.type or not args.clear:
            print("acqsim hsm encrypt-key: --type and --clear are required", file=sys.stderr)
            return 2
        try:
            clear = bytes.fromhex(args.clear)
            under = encrypt_under_lmk(lmk, KeyType(args.type), clear)
        except (ValueError, CryptoInputError, KeyParityError) as exc:
            print(f"acqsim hsm encrypt-key: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 2
        print(f"{under}  KCV {key_check_value(clear).hex().upper()[:6]}")
        return 0

    from hsm_sim.server import serve

    try:
        serving = serving_for("hsm", tls_dir=args.tls_dir, max_connections=args.max_connections)
    except (ValueError, OSError) as exc:
        print(f"acqsim hsm: {exc}", file=sys.stderr)
        return 2

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            trace = TraceWriter(args.trace_dir, "hsm")
            port = await tg.start(functools.partial(serve, args.host, args.port, lmk=lmk, trace=trace, serving=serving))
            print(f"HSM simulator, LMK check value {lmk.check_value}", flush=True)
            print(serving.summary, flush=True)
            announce("hsm", args.host, port)

    return run_service(main)
