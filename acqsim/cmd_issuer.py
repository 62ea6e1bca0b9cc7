"""``acqsim issuer serve --config FILE [--trace-dir DIR]``: an issuer host on the switch link (docs/scheme.md)."""

from __future__ import annotations

import argparse
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("serve",), help="serve: run the issuer host")
    parser.add_argument("--config", type=Path, required=True, help="the issuer host's configuration file (TOML)")
    parser.add_argument("--trace-dir", type=Path, help="append JSON-lines trace records to DIR/issuer.jsonl")


def run(args: argparse.Namespace) -> int:
    from issuer_host.cli import serve_issuer
    from issuer_host.config import load_issuer_config

    return serve_issuer(load_issuer_config(args.config), trace_dir=args.trace_dir)
