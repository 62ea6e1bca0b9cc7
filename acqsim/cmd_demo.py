"""``acqsim demo`` (what ``make demo`` runs): a business day through all five hops, explained."""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import sys
from pathlib import Path

import anyio

from acqkit.config import AcqsimConfig
from acqkit.runner import backend_options
from acqsim.demo import run_demo
from acqsim.processes import StartupError, running_processes


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--processes",
        action="store_true",
        help="run the services as separate processes (acqsim up) instead of in this process",
    )
    parser.add_argument(
        "--data-dir", type=Path, help="where stores and traces go (default: a fresh .acqsim/demo-<time> folder)"
    )


def run(args: argparse.Namespace) -> int:
    data_dir = args.data_dir or Path(".acqsim") / f"demo-{dt.datetime.now():%Y%m%d-%H%M%S}"
    config = AcqsimConfig.default(data_dir=data_dir)
    backend, options = backend_options()
    if not args.processes:
        ok: bool = anyio.run(run_demo, config, print, backend=backend, backend_options=options)
        return 0 if ok else 1
    try:
        with running_processes(data_dir=data_dir) as nac:
            ok = anyio.run(
                functools.partial(run_demo, config, print, nac=nac), backend=backend, backend_options=options
            )
    except StartupError as exc:
        print(f"acqsim demo: {exc}", file=sys.stderr)
        return 1
    return 0 if ok else 1
