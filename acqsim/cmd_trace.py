"""``acqsim trace show ID|--last``: one transaction's journey across the hops, from the services' traces.

ID is ``T<terminal>-<STAN>`` (as in the trace files) or ``<terminal>-<STAN>``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from acqsim.config import load_config
from acqsim.traceview import journey, last_transaction, load_records


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("show",))
    parser.add_argument("id", nargs="?", help="T<terminal>-<STAN>")
    parser.add_argument("--last", action="store_true", help="the most recent transaction")
    parser.add_argument("--config", type=Path)
    parser.add_argument("--trace-dir", type=Path, help="default: the configuration's data folder/traces")


def run(args: argparse.Namespace) -> int:
    trace_dir = args.trace_dir or load_config(args.config).trace_dir
    if args.last:
        found = last_transaction(load_records(trace_dir))
        if found is None:
            print(f"acqsim trace: no traced transaction in {trace_dir}", file=sys.stderr)
            return 1
        terminal, stan = found
    elif args.id and "-" in args.id:
        terminal, stan = args.id.removeprefix("T").split("-")[:2]
    else:
        print("acqsim trace show: give an ID (T<terminal>-<STAN>) or --last", file=sys.stderr)
        return 2
    lines = journey(trace_dir, terminal, stan)
    if not lines:
        print(f"acqsim trace: nothing traced for terminal {terminal} STAN {stan} in {trace_dir}", file=sys.stderr)
        return 1
    print(f"terminal {terminal}  STAN {stan}")
    print("\n".join(lines))
    return 0
