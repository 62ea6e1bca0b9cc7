"""``acqsim demo`` (what ``make demo`` runs): a business day through all five hops, explained."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import anyio

from acqsim.config import AcqsimConfig
from acqsim.demo import run_demo
from acqsim.runner import backend_options


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir", type=Path, help="where stores and traces go (default: a fresh .acqsim/demo-<time> folder)"
    )


def run(args: argparse.Namespace) -> int:
    data_dir = args.data_dir or Path(".acqsim") / f"demo-{dt.datetime.now():%Y%m%d-%H%M%S}"
    config = AcqsimConfig.default(data_dir=data_dir)
    backend, options = backend_options()
    ok: bool = anyio.run(run_demo, config, print, backend=backend, backend_options=options)
    return 0 if ok else 1
