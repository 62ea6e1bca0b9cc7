"""``acqsim hsm``: run the HSM simulator, read its audit log (``acqsim hsm audit [--last N] [--json]``), or
create, show and rotate its LMK file (``acqsim hsm lmk create|show|rotate``).

Keys enter the HSM only through its commands while it runs (``acqsim keys import``, the key ceremony): there
is no offline "wrap this clear key" tool, which would open the LMK outside the serving HSM and take a clear key
on its command line."""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from pathlib import Path
from typing import Final

import anyio

from acqkit.config import DEFAULT_DATA_DIR, port_number
from acqkit.keystore import KeyStoreError
from acqkit.metrics import add_metrics_option, start_metrics
from acqkit.rules import RuleBook, RuleError
from acqkit.runner import announce, run_service
from acqkit.serving import serving_for
from acqkit.tls import add_serving_arguments
from hsm_sim.api import PASSPHRASE_ENV, passphrase_file_for
from hsm_sim.audit import AUDIT_FILE_NAME, AuditLog, format_entry, read_audit
from hsm_sim.keys import DEFAULT_TEST_LMK, Lmk
from hsm_sim.lmk_store import (
    LmkFileError,
    open_or_create_lmk,
    random_lmk,
    read_lmk_check_value,
    read_passphrase_file,
    write_lmk_file,
)
from hsm_sim.policy import ClientPolicy
from hsm_sim.rotation import RotationError, rotate_lmk
from wire.paycrypto import CryptoInputError
from wire.trace import TraceWriter

#: Environment variable holding the LMK file's passphrase unless --passphrase-env names another.
DEFAULT_PASSPHRASE_ENV: Final = PASSPHRASE_ENV


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action",
        nargs="?",
        choices=("serve", "audit", "lmk"),
        default="serve",
        help="serve the HSM, show the audit log, or manage the LMK file (create, show, rotate)",
    )
    parser.add_argument(
        "lmk_action", nargs="?", choices=("create", "show", "rotate"), help="lmk: create, show or rotate the LMK file"
    )
    parser.add_argument("--lmk-file", type=Path, help="the LMK file sealed under a passphrase (see docs/hsm.md)")
    parser.add_argument(
        "--passphrase-file",
        type=Path,
        help="read the LMK file's passphrase from this file when the environment variable is unset",
    )
    parser.add_argument(
        "--create-lmk", action="store_true", help="serve: create the LMK file (random LMK) if it does not exist"
    )
    parser.add_argument(
        "--allow-clear-import",
        action="store_true",
        help="serve: accept clear key components (A4) - TEST key ceremonies only",
    )
    parser.add_argument("--key-store", type=Path, help="lmk rotate: the key store whose keys move to the new LMK")
    parser.add_argument(
        "--passphrase-env",
        default=DEFAULT_PASSPHRASE_ENV,
        help=f"environment variable holding the LMK file's passphrase (default {DEFAULT_PASSPHRASE_ENV})",
    )
    parser.add_argument("--test", action="store_true", help="lmk create: seal the documented TEST LMK (test material)")
    parser.add_argument("--host", default="127.0.0.1", help="serve: the address to listen on")
    parser.add_argument("--port", type=port_number, default=1500, help="serve: the port to listen on (0: any free one)")
    parser.add_argument("--lmk", default="TEST", help="TEST (the documented test LMK) or 32 hex characters")
    parser.add_argument("--trace-dir", type=Path, help="append JSON-lines trace records to DIR/hsm.jsonl")
    parser.add_argument(
        "--rules", type=Path, help="serve: scripted answers and faults (TOML, docs/rules.md); reloaded when it changes"
    )
    add_metrics_option(parser)
    parser.add_argument(
        "--audit",
        type=Path,
        default=DEFAULT_DATA_DIR / AUDIT_FILE_NAME,
        help="the HSM audit log (JSON lines): appended by serve, read by audit",
    )
    parser.add_argument(
        "--allowed-client",
        action="append",
        metavar="NAME[:CMD,CMD]",
        help="a client identity (TLS certificate CN) allowed to use the HSM, optionally only for the listed "
        "commands; repeat for more (default: frontend, all commands)",
    )
    parser.add_argument("--last", type=int, metavar="N", help="audit: only the last N entries")
    parser.add_argument("--json", action="store_true", help="audit: the entries as JSON lines")
    add_serving_arguments(parser)


def policy_from_args(values: list[str] | None) -> ClientPolicy:
    if not values:
        return ClientPolicy()
    allowed: dict[str, frozenset[str] | None] = {}
    for value in values:
        name, _, commands = value.partition(":")
        allowed[name] = frozenset(c for c in commands.split(",") if c) or None
    return ClientPolicy(allowed=allowed)


def show_audit(path: Path, last: int | None, as_json: bool) -> int:
    try:
        entries = read_audit(path, last)
    except OSError as exc:
        print(f"acqsim hsm audit: {path}: {exc.strerror}", file=sys.stderr)
        return 2
    for entry in entries:
        print(json.dumps(entry) if as_json else format_entry(entry))
    return 0


def lmk_from_arg(text: str) -> Lmk:
    return DEFAULT_TEST_LMK if text.upper() == "TEST" else Lmk.from_hex(text)


def _passphrase(args: argparse.Namespace, *, create_file: bool = False) -> str | None:
    """From ``$ACQSIM_LMK_PASSPHRASE`` (or --passphrase-env), else from --passphrase-file (made if asked)."""
    passphrase = os.environ.get(args.passphrase_env)
    if passphrase:
        return passphrase
    if args.passphrase_file is not None:
        return read_passphrase_file(args.passphrase_file, create=create_file)
    print(
        f"acqsim hsm: set the LMK file's passphrase in ${args.passphrase_env} (or give --passphrase-file)",
        file=sys.stderr,
    )
    return None


def run_rotate(args: argparse.Namespace) -> int:
    if args.key_store is None:
        print("acqsim hsm lmk rotate: give --key-store PATH (the keys to move to the new LMK)", file=sys.stderr)
        return 2
    try:
        passphrase = _passphrase(args)
        if passphrase is None:
            return 2
        result = rotate_lmk(args.lmk_file, args.key_store, passphrase)
    except RotationError as exc:
        print(f"acqsim hsm lmk rotate: {exc} (nothing changed: the old LMK and key store stay in use)", file=sys.stderr)
        return 1
    except (LmkFileError, KeyStoreError) as exc:
        print(f"acqsim hsm lmk rotate: {exc}", file=sys.stderr)
        return 2
    print(f"LMK rotated: check value {result.old_kcv} → {result.new_kcv}; {result.keys} keys translated (BW),")
    print(f"key check values unchanged; the old LMK file is kept as {result.backup}")
    return 0


def run_lmk(args: argparse.Namespace) -> int:
    if args.lmk_file is None or args.lmk_action is None:
        print("acqsim hsm lmk: give create|show|rotate and --lmk-file PATH", file=sys.stderr)
        return 2
    if args.lmk_action == "rotate":
        return run_rotate(args)
    try:
        if args.lmk_action == "show":
            print(f"LMK check value {read_lmk_check_value(args.lmk_file)}")
            return 0
        if args.lmk_file.exists():
            print(f"acqsim hsm lmk create: {args.lmk_file} exists; refusing to overwrite it", file=sys.stderr)
            return 2
        passphrase = _passphrase(args, create_file=True)
        if passphrase is None:
            return 2
        lmk = DEFAULT_TEST_LMK if args.test else random_lmk()
        write_lmk_file(args.lmk_file, lmk, passphrase, test=args.test)
    except LmkFileError as exc:
        print(f"acqsim hsm lmk: {exc}", file=sys.stderr)
        return 2
    label = " (TEST LMK - test material only)" if args.test else ""
    print(f"LMK check value {lmk.check_value}{label} written to {args.lmk_file}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.action == "audit":
        return show_audit(args.audit, args.last, args.json)
    if args.action == "lmk":
        return run_lmk(args)
    try:
        if args.lmk_file is not None:
            if args.passphrase_file is None and args.create_lmk:
                args.passphrase_file = passphrase_file_for(args.lmk_file)
            passphrase = _passphrase(args, create_file=args.create_lmk and not args.lmk_file.exists())
            if passphrase is None:
                return 2
            lmk, created = open_or_create_lmk(args.lmk_file, passphrase, create=args.create_lmk)
            if created:
                print(f"created the LMK file {args.lmk_file} (a new random LMK)", flush=True)
        else:
            lmk = lmk_from_arg(args.lmk)
    except (CryptoInputError, LmkFileError) as exc:
        print(f"acqsim hsm: {exc}", file=sys.stderr)
        return 2
    from hsm_sim.server import serve

    try:
        serving = serving_for("hsm", tls_dir=args.tls_dir, max_connections=args.max_connections)
    except (ValueError, OSError) as exc:
        print(f"acqsim hsm: {exc}", file=sys.stderr)
        return 2

    try:
        rules = RuleBook(args.rules, "hsm") if args.rules else None
    except RuleError as exc:
        print(f"acqsim hsm: --rules: {exc}", file=sys.stderr)
        return 2
    policy = policy_from_args(args.allowed_client)
    audit = AuditLog(args.audit)

    async def main() -> None:  # SIGTERM ends it like Ctrl-C (acqkit.runner.run_service): the audit log is flushed
        async with anyio.create_task_group() as tg:
            trace = TraceWriter(args.trace_dir, "hsm")
            port = await tg.start(
                functools.partial(
                    serve,
                    args.host,
                    args.port,
                    lmk=lmk,
                    trace=trace,
                    serving=serving,
                    allowed_clients=policy,
                    audit=audit,
                    allow_clear_import=args.allow_clear_import,
                    rules=rules,
                )
            )
            await start_metrics(tg, "hsm", args.host, args.metrics_port)
            print(f"HSM simulator, LMK check value {lmk.check_value}", flush=True)
            if args.allow_clear_import:
                print("clear key components accepted (A4): TEST configuration", flush=True)
            print(serving.summary, flush=True)
            announce("hsm", args.host, port)

    return run_service(main)
