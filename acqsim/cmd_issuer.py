"""``acqsim issuer serve --config FILE [--trace-dir DIR]``: an issuer host on the switch link (docs/scheme.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

from acqkit.peerclient import PEER_RETRY_WINDOW_S


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("serve",), help="serve: run the issuer host")
    parser.add_argument("--config", type=Path, required=True, help="the issuer host's configuration file (TOML)")
    parser.add_argument("--trace-dir", type=Path, help="append JSON-lines trace records to DIR/issuer.jsonl")
    parser.add_argument(
        "--tls-dir",
        type=Path,
        help="mutual TLS on every hop with the certificates in DIR (`acqsim certs create`); default: plain TCP",
    )
    parser.add_argument(
        "--peer-wait",
        type=float,
        default=PEER_RETRY_WINDOW_S,
        metavar="S",
        help=f"keep trying to reach the issuer's HSM and ledger for S seconds, then exit 3 "
        f"(default {PEER_RETRY_WINDOW_S:g})",
    )


def run(args: argparse.Namespace) -> int:
    from issuer_host.cli import serve_issuer
    from issuer_host.config import load_issuer_config

    return serve_issuer(
        load_issuer_config(args.config), trace_dir=args.trace_dir, peer_wait=args.peer_wait, tls_dir=args.tls_dir
    )
