"""``acqsim scheme day [--data-dir DIR]``: a day in the four-party TEST world; ``acqsim scheme serve --config
FILE [--trace-dir DIR]``: the switch as its own process (docs/scheme.md)."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import anyio

from acqkit.exitcodes import EXIT_DECLINED, EXIT_OK, EXIT_USAGE
from acqkit.peerclient import PEER_RETRY_WINDOW_S
from acqsim.demo_scheme import EXPECTED_CODES, SchemeDay, scheme_day


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action", choices=("day", "serve"), help="day: run the four-party TEST day; serve: run the switch"
    )
    parser.add_argument(
        "--data-dir", type=Path, help="day: keep every party's stores here (default: a temporary folder)"
    )
    parser.add_argument("--config", type=Path, help="serve: the switch's configuration file (TOML, docs/scheme.md)")
    parser.add_argument("--trace-dir", type=Path, help="serve: append JSON-lines trace records to DIR/scheme.jsonl")
    parser.add_argument(
        "--tls-dir",
        type=Path,
        help="serve: mutual TLS on every hop with the certificates in DIR (`acqsim certs create`); default: plain TCP",
    )
    parser.add_argument(
        "--peer-wait",
        type=float,
        default=PEER_RETRY_WINDOW_S,
        metavar="S",
        help=f"serve: keep trying to reach the switch's HSM for S seconds, then exit 3 "
        f"(default {PEER_RETRY_WINDOW_S:g})",
    )


def run(args: argparse.Namespace) -> int:
    if args.action == "serve":
        if args.config is None:
            print("acqsim scheme serve: --config FILE is required", file=sys.stderr)
            return EXIT_USAGE
        from scheme.cli import serve_switch
        from scheme.config import load_switch_config

        return serve_switch(
            load_switch_config(args.config), trace_dir=args.trace_dir, peer_wait=args.peer_wait, tls_dir=args.tls_dir
        )

    async def main(folder: Path) -> SchemeDay:
        return await scheme_day(folder)

    if args.data_dir is not None:
        args.data_dir.mkdir(parents=True, exist_ok=True)
        day = anyio.run(main, args.data_dir)
    else:
        with tempfile.TemporaryDirectory(prefix="acqsim-scheme-") as tmp:
            day = anyio.run(main, Path(tmp))
    print(f"positions and the switch's income sum to zero: {day.balanced}; every ledger balanced: {day.books_sound}")
    expected = dict(EXPECTED_CODES)
    if any(expected.get(what, code) != code for what, code in day.codes):
        print("some steps did not end as expected")
        return EXIT_DECLINED
    return EXIT_OK if day.balanced and day.books_sound else EXIT_DECLINED
