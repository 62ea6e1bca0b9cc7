"""``acqsim reader``: the MPOS card reader as its own small service, and its key loading.

    acqsim reader serve [--host 127.0.0.1] [--port 0] [--config FILE]
    acqsim reader inject --reader HOST:PORT [--scheme tdes|aes] [--terminal ID] [--config FILE] [--json]
    acqsim reader status --reader HOST:PORT [--json]

``serve`` prints ``READY reader HOST:PORT`` once listening and serves the link of :mod:`wire.readerlink` until
interrupted. ``inject`` plays the key injection facility: it derives the reader's initial key from the
configuration's TEST BDK (IPEK for TDES, X9.24-1; the AES-128 initial key, X9.24-3) for the KSN of the reader
paired with ``--terminal`` and loads it (TEST material only). The phone then uses it with
``acqsim pos --terminal ID --reader HOST:PORT purchase AMOUNT``.

Exit codes: 0 done, 1 the reader refused, 2 usage or configuration, 3 no reader at HOST:PORT.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path
from typing import Any

import anyio

from acqkit.config import AcqsimConfig, ConfigError, load_config, split_host_port
from acqkit.exitcodes import EXIT_DECLINED, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE
from acqkit.runner import announce, run_service
from terminal.reader import DukptScheme, initial_ksn_for
from terminal.readerd.client import ReaderUnreachable, load_keys, reader_status
from terminal.readerd.core import ReaderDevice
from terminal.readerd.server import serve_reader
from wire.dukpt import aes_initial_key, tdes_ipek
from wire.readerlink import SCHEMES, LoadKeys, ReaderLinkError

ACTIONS = ("serve", "inject", "status")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=ACTIONS, help="serve the reader, load its keys, or ask its status")
    parser.add_argument("--host", default="127.0.0.1", help="serve: address to listen on")
    parser.add_argument("--port", type=int, default=0, help="serve: port to listen on (0: any free port)")
    parser.add_argument("--reader", help="inject / status: HOST:PORT of a running reader (acqsim reader serve)")
    parser.add_argument("--scheme", choices=SCHEMES, default="tdes", help="inject: TDES (X9.24-1) or AES-128 DUKPT")
    parser.add_argument("--terminal", help="inject: the terminal the reader pairs with (default: the MPOS one)")
    parser.add_argument("--config", type=Path, help="configuration: its TEST cards (serve) and TEST BDK (inject)")
    parser.add_argument("--json", action="store_true", help="inject / status: print the answer as one JSON object")


def reader_test_keys(config: AcqsimConfig, terminal_id: str, scheme: DukptScheme) -> LoadKeys:
    """The TEST reader's initial key and KSN, derived from the configuration's TEST BDK as the key injection
    facility would (the clear initial key exists only in this message to the reader)."""
    bdk = bytes.fromhex(config.bdk)
    ksn = initial_ksn_for(config.bdk_ksi, terminal_id, scheme)
    if scheme is DukptScheme.AES:
        return LoadKeys("aes", aes_initial_key(bdk, ksn), ksn)
    return LoadKeys("tdes", tdes_ipek(bdk, ksn), ksn)


def _mpos_terminal(config: AcqsimConfig) -> str:
    return next((t.terminal_id for t in config.terminals if t.app_type == "67"), config.terminals[0].terminal_id)


def _reader_address(args: argparse.Namespace) -> tuple[str, int]:
    if not args.reader:
        raise ValueError(f"{args.action} needs --reader HOST:PORT")
    return split_host_port(args.reader)


def _report(args: argparse.Namespace, answer: dict[str, Any]) -> None:
    members = {k: v for k, v in answer.items() if k != "ok"}
    print(json.dumps(members) if args.json else " ".join(f"{k} {v}" for k, v in members.items()))


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
        if args.action == "serve":
            device = ReaderDevice({card.pan: card for card in config.cards})

            async def main() -> None:
                async with anyio.create_task_group() as tg:
                    bound = await tg.start(functools.partial(serve_reader, device, args.host, args.port))
                    announce("reader", args.host, bound)

            return run_service(main)
        host, port = _reader_address(args)
        if args.action == "status":
            answer = anyio.run(functools.partial(reader_status, host, port))
        else:
            keys = reader_test_keys(config, args.terminal or _mpos_terminal(config), DukptScheme(args.scheme))
            answer = anyio.run(functools.partial(load_keys, host, port, keys))
    except (ConfigError, ValueError) as exc:
        print(f"acqsim reader: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ReaderUnreachable as exc:
        print(f"acqsim reader: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except ReaderLinkError as exc:
        print(f"acqsim reader: the reader refused: {exc}", file=sys.stderr)
        return EXIT_DECLINED
    _report(args, answer)
    return EXIT_OK
