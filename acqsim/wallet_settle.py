"""``acqsim wallet settle``: the QR wallet's takings of a business date settled into the ledger, exactly once.

    acqsim wallet settle [--date YYYYMMDD] [--wallet HOST:PORT] [--ledger DB|URL] [--fee-bp N] [--out CSV] [--json]

Three steps, each safe to repeat (docs/qr.md, "Settlement"):

1. ``STLO`` asks the wallet host to open the date's batches (one per wallet and merchant). It totals and
   freezes them in one transaction; asking again returns the same batches, so a rerun sees the amounts the
   first run posted.
2. Every batch still open is posted into the ledger's store in ONE transaction, keyed by (wallet, date,
   merchant) (core_ledger/walletsettle.py); a key the ledger holds already is not posted again.
3. ``STLM`` marks each posted batch settled at the wallet.

A kill between 2 and 3 leaves batches open at the wallet but posted in the ledger: the rerun posts nothing
and finishes the marks. Like ``acqsim ledger settle``, it writes the ledger's store directly (balances as
deltas, so a serving ledger's own commits are not disturbed; its memory shows the batch after a restart).

Exit codes: 0 done (or nothing to do), 1 a batch was left open (its merchant is unknown to the ledger), 2 usage
or a store that cannot be used, 3 the wallet host unreachable or silent.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import functools
import io
import json
import sys
import time
from pathlib import Path
from typing import Final

import anyio

from acqkit.config import CONFIG_HELP, Endpoint, load_config
from acqkit.exitcodes import EXIT_DECLINED, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE
from core_ledger.setup import open_store
from core_ledger.store import LedgerStore, StoreError
from core_ledger.walletsettle import PostedBatch, WalletBatch, post_wallet_settlement, posted_as
from wallet.client import DEFAULT_WALLET, WalletClient, WalletError
from wire.constants import ResponseCode
from wire.tlvlink import LinkMessage
from wire.walletlink import Kind

#: The wallet's fee on QR takings unless ``--fee-bp`` says otherwise: none.
DEFAULT_WALLET_FEE_BP: Final = 0
BATCH_OPEN: Final = "open"
CSV_COLUMNS: Final = (
    "business_date",
    "wallet",
    "merchant_id",
    "payment_count",
    "net_amount",
    "fee_amount",
    "payout_amount",
    "paid_to_account",
    "this_run",
)


class WalletSettleError(Exception):
    """The wallet host refused a settlement step (its answer named)."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class WalletSettleReport:
    business_date: str
    posted: tuple[PostedBatch, ...] = ()  # posted into the ledger by this run
    finished: tuple[PostedBatch, ...] = ()  # the ledger held them already (a rerun): only marked now
    settled_before: tuple[PostedBatch, ...] = ()  # settled by an earlier run: nothing done
    left_open: tuple[WalletBatch, ...] = ()  # the ledger does not know the merchant

    @property
    def nothing_posted(self) -> bool:
        return not self.posted

    def to_json(self) -> dict[str, object]:
        def batch(b: WalletBatch) -> dict[str, object]:
            return {"wallet": b.wallet, "merchant": b.merchant_id, "net": b.amount, "payments": b.count}

        def posting(p: PostedBatch) -> dict[str, object]:
            return {**batch(p.batch), "fee": p.fee, "payout": p.payout, "paid_to": p.paid_to}

        return {
            "date": self.business_date,
            "posted": [posting(p) for p in self.posted],
            "finished": [posting(p) for p in self.finished],
            "settled_before": [posting(p) for p in self.settled_before],
            "left_open": [batch(b) for b in self.left_open],
        }

    def rows(self) -> list[tuple[str, PostedBatch | WalletBatch]]:
        """(what this run did, the batch) for every batch of the date."""
        return [
            *(("posted", p) for p in self.posted),
            *(("marked", p) for p in self.finished),
            *(("settled before", p) for p in self.settled_before),
            *(("left open", b) for b in self.left_open),
        ]


async def _ask(client: WalletClient, request: LinkMessage) -> LinkMessage:
    answer = await client.request(request)
    if answer.result != ResponseCode.APPROVED:
        raise WalletSettleError(f"wallet {request.kind}: {answer.result} {answer.get('TX') or ''}".strip())
    return answer


async def settle_wallet(client: WalletClient, store: LedgerStore, day: str, *, fee_bp: int) -> WalletSettleReport:
    """Open ``day``'s batches at the wallet, post the open ones into ``store``, mark them at the wallet."""
    opened = await _ask(client, LinkMessage.of(Kind.SETTLE_OPEN, DA=day))
    open_batches: list[WalletBatch] = []
    settled_before: list[WalletBatch] = []
    for index in range(int(opened["CN"])):
        answer = await _ask(client, LinkMessage.of(Kind.SETTLE_BATCH, DA=day, IX=index))
        batch = WalletBatch(
            wallet=answer["WL"],
            business_date=answer["DA"],
            merchant_id=answer["MI"],
            amount=int(answer["NT"]),
            count=int(answer["CN"]),
        )
        (open_batches if answer["ON"] == BATCH_OPEN else settled_before).append(batch)
    plan = await anyio.to_thread.run_sync(functools.partial(post_wallet_settlement, store, open_batches, fee_bp=fee_bp))
    state = await anyio.to_thread.run_sync(store.load) if settled_before else None
    # As the ledger posted them then (a batch settled at the wallet without its posting shows no money here;
    # reconcile names it).
    earlier = [
        (posted_as(state, b) if state else None) or PostedBatch(batch=b, fee=0, payout=0, paid_to="")
        for b in settled_before
    ]
    for batch in (*(p.batch for p in plan.posted), *(p.batch for p in plan.already)):
        await _ask(
            client, LinkMessage.of(Kind.SETTLE_MARK, DA=batch.business_date, WL=batch.wallet, MI=batch.merchant_id)
        )
    return WalletSettleReport(
        business_date=day,
        posted=plan.posted,
        finished=plan.already,
        settled_before=tuple(earlier),
        left_open=plan.unknown_merchant,
    )


def report_csv(report: WalletSettleReport) -> str:
    """The QR settlement report of one run: one row per batch of the date, amounts in minor units."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for done, row in report.rows():
        batch = row.batch if isinstance(row, PostedBatch) else row
        money = (row.fee, row.payout, row.paid_to) if isinstance(row, PostedBatch) else ("", "", "")
        writer.writerow((batch.business_date, batch.wallet, batch.merchant_id, batch.count, batch.amount, *money, done))
    return out.getvalue()


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help=CONFIG_HELP)
    parser.add_argument("--date", help="the business date to settle, YYYYMMDD (default: today, UTC)")
    parser.add_argument("--wallet", help=f"HOST:PORT of the wallet host (default: [wallet], {DEFAULT_WALLET})")
    parser.add_argument("--ledger", help="the ledger store, a SQLite file or postgresql:// URL (default: the config's)")
    parser.add_argument(
        "--fee-bp",
        type=int,
        default=DEFAULT_WALLET_FEE_BP,
        help="the fee on QR takings in basis points, rounded half up (default %(default)s: none)",
    )
    parser.add_argument("--out", type=Path, help="also write the QR settlement report (CSV, one row per batch)")
    parser.add_argument("--json", action="store_true", help="print what was posted as one JSON object")


def _money(minor: int) -> str:
    return f"{minor / 100:,.2f}"


def render(report: WalletSettleReport) -> str:
    lines = [
        f"posted {p.batch.wallet} {p.batch.merchant_id} net {_money(p.batch.amount)} fee {_money(p.fee)}"
        f" pay {_money(p.payout)} to {p.paid_to} ({p.batch.count} payment(s))"
        for p in report.posted
    ]
    lines += [f"in the ledger already, marked now: {p.batch.wallet} {p.batch.merchant_id}" for p in report.finished]
    lines += [
        f"WARNING left open, merchant unknown to the ledger: {b.wallet} {b.merchant_id}" for b in report.left_open
    ]
    if report.nothing_posted:
        lines.append(f"wallet settlement {report.business_date}: nothing posted (settled already or nothing due)")
    else:
        lines.append(f"wallet settlement {report.business_date}: {len(report.posted)} batch(es) posted")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    day = args.date or time.strftime("%Y%m%d", time.gmtime())
    if len(day) != 8 or not day.isdigit() or args.fee_bp < 0:
        print("acqsim wallet settle: --date must be YYYYMMDD and --fee-bp >= 0", file=sys.stderr)
        return EXIT_USAGE
    endpoint = Endpoint.parse(args.wallet) if args.wallet else config.wallet.listen
    db = args.ledger or str(config.store_path(config.ledger.db))
    if "://" not in db and not Path(db).is_file():  # settling must never create a ledger
        print(f"acqsim wallet settle: no ledger store at {db}", file=sys.stderr)
        return EXIT_USAGE

    async def main() -> WalletSettleReport:
        async with WalletClient(endpoint.host, endpoint.port) as client:
            return await settle_wallet(client, store, day, fee_bp=args.fee_bp)

    try:
        store = open_store(db)
    except StoreError as exc:
        print(f"acqsim wallet settle: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        report = anyio.run(main)
    except WalletError as exc:
        print(f"acqsim wallet settle: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except (WalletSettleError, StoreError) as exc:
        print(f"acqsim wallet settle: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        store.close()
    if args.out:
        args.out.write_text(report_csv(report), encoding="utf-8")
    print(json.dumps(report.to_json()) if args.json else render(report))
    return EXIT_DECLINED if report.left_open else EXIT_OK
