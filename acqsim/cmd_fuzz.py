"""``acqsim fuzz``: a mutational fuzzer for the POS link, with a good terminal transacting beside it.

    acqsim fuzz [--against HOST:PORT] [--frames N] [--seed S] [--connections C] [--ledger DB|URL]
                [--config FILE] [--json]

Without ``--against`` it starts its own in-process pipeline over a temporary data directory and fuzzes its
NAC (``--at frontend``: the front-end's own port). With ``--ledger`` (or its own pipeline) it also checks
that each of the good terminal's approved purchases is posted exactly once and the others not at all.
Exit 0 only when the host never stopped accepting and the good terminal lost nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import sys
import tempfile
from pathlib import Path
from typing import Final

import anyio

from acqkit.config import CONFIG_HELP, AcqsimConfig, ConfigError, Endpoint, load_config
from acqkit.exitcodes import EXIT_UNREACHABLE, EXIT_USAGE
from acqkit.peerclient import accepts_connection
from acqkit.runner import backend_options
from acqsim.pipeline import running_pipeline
from acqsim.reconcile import IN_EFFECT, ReconcileError
from core_ledger.setup import open_store
from terminal.fuzz.runner import FuzzReport, run_fuzz

#: Most frames one run sends (a million at ~1,000 frames/s is under 20 minutes).
MAX_FRAMES: Final = 10_000_000
MAX_CONNECTIONS: Final = 64


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--against", help="HOST:PORT of a POS-link host (default: start a pipeline here)")
    parser.add_argument("--at", choices=("nac", "frontend"), default="nac", help="own pipeline: which port to fuzz")
    parser.add_argument("--frames", type=int, default=10_000, help="fuzzed frames to send")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same frames")
    parser.add_argument("--connections", type=int, default=4, help="concurrent fuzz connections")
    parser.add_argument("--ledger", help="the target's ledger store, for the exactly-once check of good postings")
    parser.add_argument("--config", type=Path, help=CONFIG_HELP)
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")


def check_good_postings(report: FuzzReport, ledger_db: str) -> list[str]:
    """Each approved good purchase posted exactly once, each other one not in effect at the ledger."""
    if "://" not in ledger_db and not Path(ledger_db).is_file():
        raise ReconcileError(f"no ledger store at {ledger_db}")
    store = open_store(ledger_db)
    try:
        txns = list(store.load().txns.values())
    finally:
        store.close()
    problems = []
    for purchase in report.good:
        if not purchase.rrn:
            continue
        posted = [t for t in txns if t.rrn == purchase.rrn and t.op.value == "purchase" and t.status in IN_EFFECT]
        expected = 1 if purchase.approved else 0
        if len(posted) != expected:
            problems.append(f"good purchase stan={purchase.stan} rrn={purchase.rrn}: {len(posted)} postings")
    return problems


def render(report: FuzzReport) -> str:
    out = report.to_json()
    lines = [
        f"fuzzed {out['frames_sent']} frames at {out['target']} (seed {out['seed']}) in {out['seconds']} s",
        f"answers by code: {out['answers_by_code']}",
        f"host closed {out['closed']}, unanswered {out['unanswered']}, abandoned by us {out['abandoned']}",
        f"by mutator: {out['by_mutator']}",
        f"crashes: {len(report.crashes)} {report.crashes if report.crashes else ''}".rstrip(),
        f"good terminal: signed on {out['good_signed_on']}, purchases {out['good_purchases']}, approved "
        f"{out['good_approved']}, hangs {out['hangs']}, lost {out['good_lost']}",
    ]
    lines.extend(f"  ledger: {p}" for p in report.ledger_problems)
    lines.append("verdict: clean" if report.clean else "verdict: NOT clean")
    return "\n".join(lines)


async def _fuzz_own_pipeline(config: AcqsimConfig, args: argparse.Namespace) -> FuzzReport:
    async with running_pipeline(config) as pipeline:
        target = pipeline.nac if args.at == "nac" else pipeline.frontend
        report = await run_fuzz(config, target, frames=args.frames, seed=args.seed, connections=args.connections)
        pipeline.cancel.cancel()
    report.ledger_problems = check_good_postings(report, config.store_path(config.ledger.db))
    return report


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.frames <= MAX_FRAMES or not 1 <= args.connections <= MAX_CONNECTIONS:
        print(f"acqsim fuzz: --frames 1..{MAX_FRAMES}, --connections 1..{MAX_CONNECTIONS}", file=sys.stderr)
        return EXIT_USAGE
    try:
        config = load_config(args.config)
        against = Endpoint.parse(args.against) if args.against else None
    except (ValueError, ConfigError) as exc:
        print(f"acqsim fuzz: {exc}", file=sys.stderr)
        return EXIT_USAGE
    backend, options = backend_options()
    try:
        with tempfile.TemporaryDirectory(prefix="acqsim-fuzz-") as folder:
            if against is None:
                own = dataclasses.replace(config, data_dir=Path(folder))
                report = anyio.run(_fuzz_own_pipeline, own, args, backend=backend, backend_options=options)
            else:
                probe = functools.partial(accepts_connection, against.host, against.port)
                if not anyio.run(probe, backend=backend, backend_options=options):
                    print(f"acqsim fuzz: nothing accepts a connection at {against}", file=sys.stderr)
                    return EXIT_UNREACHABLE
                report = anyio.run(
                    lambda: run_fuzz(config, against, frames=args.frames, seed=args.seed, connections=args.connections),
                    backend=backend,
                    backend_options=options,
                )
                if args.ledger:
                    report.ledger_problems = check_good_postings(report, args.ledger)
    except ReconcileError as exc:
        print(f"acqsim fuzz: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(json.dumps(report.to_json()) if args.json else render(report))
    return 0 if report.clean else 1
