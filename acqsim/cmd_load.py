"""``acqsim load``: many concurrent signed-on terminals against a pipeline, open-loop.

    acqsim load --terminals N --rate TPS --duration S [--mix purchase=80,balance=10,preauth=10]
                [--against HOST:PORT | --in-process] [--keep-alive [--connections C]]
                [--cards N [--spread request|terminal]] [--frontends N] [--json] [--plot FILE] [--config FILE]

Without ``--against`` it starts its own pipeline configured with the load terminals ``2000001``… over fresh
temporary stores, traces off: the four services as separate processes, as ``acqsim up`` runs them (or with
``--in-process`` in this one process: quicker to start, but one core for everything). An external pipeline
must have those terminals configured (same TMK as terminal 10000001, first merchant) and, with ``--cards N``,
the N load cards (``terminal.load.runner.load_cards``: deterministic, so ``acqsim load --cards N`` against a
pipeline it starts, or ``acqsim echo-host``, needs nothing). Latency is measured from each request's due time
(open loop). ``--keep-alive`` runs the pipelined engine (``terminal/load/engine.py``); ``--connections C``
carries the terminals over C connections instead of one each. ``--frontends N`` starts N front-end processes
(``acqsim up --frontends N``) behind a NAC that keeps each terminal on one.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import json
import sys
import tempfile
from pathlib import Path

import anyio

from acqkit.config import CONFIG_HELP, MAX_FRONTENDS, ConfigError, Endpoint, load_config
from acqkit.exitcodes import EXIT_UNREACHABLE
from acqkit.runner import backend_options, leaves
from acqsim.pipeline import running_pipeline
from acqsim.processes import StartupError, pipeline_processes
from terminal.load.engine import SPREADS
from terminal.load.runner import load_cards, progress_line, run_load, with_load_cards, with_load_terminals
from terminal.load.schedule import Mix, OpenLoopSchedule
from terminal.load.stats import LoadStats, plot, table
from terminal.session import TerminalError

MAX_TERMINALS = 20_000
MAX_DURATION_S = 3600.0
MAX_CARDS = 100_000


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--terminals", type=int, default=10, help="virtual terminals transacting at once")
    parser.add_argument("--rate", type=float, default=100.0, help="offered requests per second")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds")
    parser.add_argument(
        "--mix", default="purchase=80,balance=10,preauth=10", help="kinds of request and their weights, KIND=N,…"
    )
    parser.add_argument("--against", help="HOST:PORT of a running NAC (default: start a pipeline here)")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parser.add_argument("--plot", type=Path, help="write latency-over-time and histogram PNG here")
    parser.add_argument("--config", type=Path, help=CONFIG_HELP)
    parser.add_argument("--seed", type=int, default=0, help="same seed, same sequence of requests")
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="without --against: run the services inside this process instead of as separate processes",
    )
    parser.add_argument(
        "--keep-alive",
        action="store_true",
        help="each terminal keeps one NAC connection open (default: a short connection per transaction)",
    )
    parser.add_argument(
        "--connections", type=int, help="with --keep-alive: carry the terminals over this many connections"
    )
    parser.add_argument(
        "--frontends",
        type=int,
        default=1,
        metavar="N",
        help=f"without --against: start a pool of N front-end processes (1–{MAX_FRONTENDS}) behind a sticky NAC",
    )
    parser.add_argument("--cards", type=int, default=1, help="test cards to spread the requests over (default 1)")
    parser.add_argument(
        "--spread",
        choices=SPREADS,
        default="request",
        help="request: each request the next card; terminal: each terminal always the same card",
    )


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.terminals <= MAX_TERMINALS or not 0 < args.duration <= MAX_DURATION_S:
        print(f"acqsim load: --terminals 1..{MAX_TERMINALS}, --duration up to {MAX_DURATION_S:.0f} s", file=sys.stderr)
        return 2
    if not 1 <= args.cards <= MAX_CARDS or (args.connections is not None and args.connections < 1):
        print(f"acqsim load: --cards 1..{MAX_CARDS}, --connections at least 1", file=sys.stderr)
        return 2
    if not 1 <= args.frontends <= MAX_FRONTENDS or (args.frontends > 1 and (args.against or args.in_process)):
        print(f"acqsim load: --frontends 1..{MAX_FRONTENDS}, only for the pipeline of processes", file=sys.stderr)
        return 2
    if args.connections is not None and not args.keep_alive:
        print("acqsim load: --connections needs --keep-alive", file=sys.stderr)
        return 2
    try:
        schedule = OpenLoopSchedule(args.rate, args.duration)
        mix = Mix.parse(args.mix)
        config = load_config(args.config)
        against = Endpoint.parse(args.against) if args.against else None
        cards = load_cards(config, args.cards)
        config = with_load_cards(config, cards)
    except (ValueError, ConfigError) as exc:
        print(f"acqsim load: {exc}", file=sys.stderr)
        return 2
    backend, options = backend_options()
    with tempfile.TemporaryDirectory(prefix="acqsim-load-") as folder, contextlib.ExitStack() as services:
        if against is None and args.in_process:
            config = dataclasses.replace(config, data_dir=Path(folder))
        elif against is None:
            try:
                against = services.enter_context(
                    pipeline_processes(config, args.terminals, Path(folder), frontends=args.frontends)
                )
            except StartupError as exc:
                print(f"acqsim load: {exc}", file=sys.stderr)
                return 1

        async def load(nac: Endpoint) -> tuple[LoadStats, float]:
            return await run_load(
                config,
                terminals=args.terminals,
                schedule=schedule,
                mix=mix,
                against=nac,
                progress=progress_line(args.duration),
                seed=args.seed,
                keep_alive=args.keep_alive,
                connections=args.connections,
                cards=cards,
                spread=args.spread,
            )

        async def load_in_process() -> tuple[LoadStats, float]:
            async with running_pipeline(with_load_terminals(config, args.terminals)) as pipeline:
                return await load(pipeline.nac)

        main = load_in_process if against is None else functools.partial(load, against)
        try:
            stats, elapsed = anyio.run(main, backend=backend, backend_options=options)
        except BaseExceptionGroup as group:  # raised out of the terminals' task group
            refused = leaves(group, TerminalError)  # the terminals could not sign on: nobody answers there
            if not refused:
                raise
            print(f"acqsim load: {against or 'the pipeline'}: {refused[0]}", file=sys.stderr)
            return EXIT_UNREACHABLE
    summary = stats.summary(elapsed)
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    print(json.dumps(summary) if args.json else table(summary))
    if args.plot:
        plot(stats, str(args.plot))
    return 0
