"""``acqsim scenario aggregator-failure``: 一清 beside 二清 until the aggregator fails (docs/clearing.md)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
from pathlib import Path

from acqkit.exitcodes import EXIT_OK, EXIT_USAGE
from acqsim.scenario_aggregator import DIRECT_MERCHANT, SUB_MERCHANTS, ScenarioConfig, run_scenario
from core_ledger.aggregator import DEFAULT_DELAY_DAYS, DEFAULT_FEE_BP, PayoutPolicy


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", choices=("aggregator-failure",), help="the scenario to run")
    parser.add_argument(
        "--fail-day", type=int, default=5, help="the aggregator fails on the morning of this day (default 5)"
    )
    parser.add_argument(
        "--delay-days",
        type=int,
        default=DEFAULT_DELAY_DAYS,
        help=f"days after the business day the aggregator pays its sub-merchants (default {DEFAULT_DELAY_DAYS})",
    )
    parser.add_argument(
        "--fee-bp",
        type=int,
        default=DEFAULT_FEE_BP,
        help=f"the aggregator's own fee in basis points (default {DEFAULT_FEE_BP})",
    )
    parser.add_argument("--data-dir", type=Path, help="keep the scenario's ledger here (default: a temporary folder)")
    parser.add_argument("--json", action="store_true", help="the report as one JSON object")


def _money(fen: int) -> str:
    return f"{fen / 100:,.2f}"


def run(args: argparse.Namespace) -> int:
    try:
        config = ScenarioConfig(
            fail_day=args.fail_day, policy=PayoutPolicy(delay_days=args.delay_days, fee_bp=args.fee_bp)
        )
    except ValueError as exc:
        print(f"acqsim scenario: {exc}")
        return EXIT_USAGE
    if args.data_dir is not None:
        report = run_scenario(config, args.data_dir)
    else:
        with tempfile.TemporaryDirectory(prefix="acqsim-scenario-") as tmp:
            report = run_scenario(config, Path(tmp))
    if args.json:
        print(
            json.dumps(
                {
                    "rows": [dataclasses.asdict(row) for row in report.rows],
                    "lost": report.lost,
                    "total_lost": report.total_lost,
                    "aggregator_own": report.aggregator_own,
                }
            )
        )
        return EXIT_OK
    print(
        f"一清 merchant {DIRECT_MERCHANT} is paid by the acquirer T+1; sub-merchants {', '.join(SUB_MERCHANTS)} are "
        f"paid by the aggregator {args.delay_days} day(s) after each business day, less {args.fee_bp} bp (CNY)"
    )
    print(f"{'day':<10} {'pool':>12} {'owed to subs':>14} {'subs paid':>12} {'一清 paid':>12}")
    for row in report.rows:
        mark = "  ← aggregator fails before its payout" if row.failed else ""
        print(
            f"{row.date:<10} {_money(row.pool_balance):>12} {_money(row.owed_to_sub_merchants):>14} "
            f"{_money(row.paid_to_sub_merchants):>12} {_money(row.paid_to_direct_merchant):>12}{mark}"
        )
    for merchant_id, lost in report.lost.items():
        print(f"sub-merchant {merchant_id} loses {_money(lost)}")
    own = _money(report.aggregator_own)
    print(f"lost in total {_money(report.total_lost)}; the aggregator's own fees in the pool {own}")
    print("the 一清 merchant loses nothing: the licensed acquirer paid it directly")
    return EXIT_OK
