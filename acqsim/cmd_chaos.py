"""``acqsim chaos [--duration S] [--rate TPS] [--kill hsm,ledger,frontend,nac] [--frontends N] [--json]
[--config FILE]``

Exit 0 only on a clean verdict (see :mod:`acqsim.chaos`); 1 otherwise; 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Final

from acqkit.config import CONFIG_HELP, MAX_FRONTENDS, load_config
from acqkit.exitcodes import EXIT_USAGE
from acqsim.chaos import SERVICES, ChaosError, render, run_chaos

MAX_DURATION_S: Final = 3600.0


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--rate", type=float, default=20.0, help="purchases per second offered")
    parser.add_argument("--kill", default=",".join(SERVICES), help="services to kill -9, in order")
    parser.add_argument("--config", type=Path, help=CONFIG_HELP)
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    parser.add_argument(
        "--frontends",
        type=int,
        default=1,
        metavar="N",
        help=f"a pool of N front-ends (1–{MAX_FRONTENDS}) behind a sticky NAC; `frontend` in --kill is member 1",
    )


def run(args: argparse.Namespace) -> int:
    kill = tuple(name for name in args.kill.split(",") if name)
    if (
        any(name not in SERVICES for name in kill)
        or not 0 < args.duration <= MAX_DURATION_S
        or args.rate <= 0
        or not 1 <= args.frontends <= MAX_FRONTENDS
    ):
        print(
            f"acqsim chaos: --kill from {','.join(SERVICES)}; --duration up to {MAX_DURATION_S:.0f} s", file=sys.stderr
        )
        return EXIT_USAGE
    config = load_config(args.config)
    with tempfile.TemporaryDirectory(prefix="acqsim-chaos-") as folder:
        try:
            result = run_chaos(
                config, Path(folder), duration=args.duration, rate=args.rate, kill=kill, frontends=args.frontends
            )
        except ChaosError as exc:
            print(f"acqsim chaos: {exc}", file=sys.stderr)
            return 1
    print(json.dumps(result.to_json()) if args.json else render(result))
    return 0 if result.clean else 1
