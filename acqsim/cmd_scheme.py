"""``acqsim scheme day [--data-dir DIR]``: a day in the four-party TEST world (docs/scheme.md)."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import anyio

from acqkit.exitcodes import EXIT_DECLINED, EXIT_OK
from acqsim.demo_scheme import SchemeDay, scheme_day


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("day",), help="day: run the four-party TEST day")
    parser.add_argument("--data-dir", type=Path, help="keep every party's stores here (default: a temporary folder)")


def run(args: argparse.Namespace) -> int:
    async def main(folder: Path) -> SchemeDay:
        return await scheme_day(folder)

    if args.data_dir is not None:
        args.data_dir.mkdir(parents=True, exist_ok=True)
        day = anyio.run(main, args.data_dir)
    else:
        with tempfile.TemporaryDirectory(prefix="acqsim-scheme-") as tmp:
            day = anyio.run(main, Path(tmp))
    print(f"positions and the switch's income sum to zero: {day.balanced}; every ledger balanced: {day.books_sound}")
    return EXIT_OK if day.balanced and day.books_sound else EXIT_DECLINED
