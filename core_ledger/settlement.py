"""Settlement: the cut-over that closes a business day and pays each merchant its net. No I/O.

Card spend waits in the acquirer clearing account. A settlement run for business date D takes every
transaction not yet settled whose business date is D or earlier (late arrivals for a closed day are picked up
by the next run) and, per merchant:

- net = the clearing account's movement caused by that merchant's transactions (purchases and completions
  add, voids, refunds and reversals take away, so a reversed or voided sale nets to zero);
- fee = net × merchant discount rate (basis points), rounded half up, with the sign of net (a day of
  refunds gives fees back);
- payout = net − fee.

Postings (every one sums to zero): clearing −net, fee income +fee, payee +payout. The payee is the
merchant's own account in mode ``direct`` (一清), or its aggregator's pooled account in mode ``secondary`` (二清):
there the money stays, the aggregator's to hold, until the aggregator runs its own payout to its sub-merchants
(:mod:`core_ledger.aggregator`, later and with its own fee) — or fails first.

A run is recorded as a ``cutover`` transaction ``CUTOVER|D|n``; run n+1 for the same date settles only what
arrived since. A transaction whose merchant the ledger does not know is left unsettled and reported.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from typing import Final

from core_ledger.api import LedgerAnswer
from core_ledger.model import CLEARING_ACCOUNT, FEE_ACCOUNT, BookOp, Entry, Merchant, Txn, TxnStatus
from core_ledger.state import LedgerState
from core_ledger.store import Posting
from wire.constants import ResponseCode

BASIS_POINTS: Final = 10_000
MODE_DIRECT: Final = "direct"
MODE_SECONDARY: Final = "secondary"

CSV_COLUMNS: Final = (
    "business_date",
    "run",
    "merchant_id",
    "merchant_name",
    "mode",
    "debit_count",
    "debit_amount",
    "credit_count",
    "credit_amount",
    "net_amount",
    "fee_bp",
    "fee_amount",
    "payout_amount",
    "paid_to_account",
    "merchant_account",
)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class MerchantLine:
    merchant: Merchant
    debit_count: int
    debit_amount: int
    credit_count: int
    credit_amount: int
    fee: int

    @property
    def net(self) -> int:
        return self.debit_amount - self.credit_amount

    @property
    def payout(self) -> int:
        return self.net - self.fee

    @property
    def paid_to(self) -> str:
        merchant = self.merchant
        if merchant.settlement == MODE_SECONDARY and merchant.aggregator_account_id:
            return merchant.aggregator_account_id
        return merchant.account_id


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SettlementRun:
    business_date: str  # YYYYMMDD
    run: int
    lines: tuple[MerchantLine, ...]
    postings: tuple[Posting, ...]
    settled_keys: tuple[str, ...]
    unknown_merchants: tuple[str, ...]  # merchant ids whose transactions stay unsettled


def fee_for(net: int, fee_bp: int) -> int:
    """The merchant discount on ``net``: rounded half up, same sign as ``net``."""
    magnitude = (Decimal(abs(net)) * fee_bp / BASIS_POINTS).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return int(magnitude) if net >= 0 else -int(magnitude)


def clearing_delta(txn: Txn) -> int:
    return sum(e.amount for e in txn.effects if isinstance(e, Entry) and e.account_id == CLEARING_ACCOUNT)


def _book_txn(
    key: str, op: BookOp, *, business_date: str, merchant_id: str, amount: int, effects: tuple[Entry, ...]
) -> Txn:
    return Txn(
        key=key,
        op=op,
        pan="",
        amount=amount,
        terminal_id="",
        merchant_id=merchant_id,
        business_date=business_date,
        rrn="",
        fingerprint=op.value,
        answer=LedgerAnswer(response_code=ResponseCode.APPROVED, rrn=""),
        status=TxnStatus.POSTED,
        effects=effects,
        settled=True,
    )


def plan_settlement(state: LedgerState, business_date: str) -> SettlementRun:
    """The run that closes ``business_date`` (YYYYMMDD) over ``state``; nothing is changed."""
    if len(business_date) != 8 or not business_date.isdigit():
        raise ValueError("business date must be YYYYMMDD")
    prefix = f"{BookOp.CUTOVER.value.upper()}|{business_date}|"
    run = 1 + sum(1 for key in state.txns if key.startswith(prefix))
    due = [t for t in state.txns.values() if not t.settled and t.business_date <= business_date]
    by_merchant: dict[str, list[Txn]] = defaultdict(list)
    settled: list[str] = []
    unknown: set[str] = set()
    for txn in due:
        delta = clearing_delta(txn)
        if delta and txn.merchant_id not in state.merchants:
            unknown.add(txn.merchant_id)
            continue
        settled.append(txn.key)
        if delta:
            by_merchant[txn.merchant_id].append(txn)
    lines = []
    postings: list[Posting] = []
    for merchant_id in sorted(by_merchant):
        merchant = state.merchants[merchant_id]
        deltas = [clearing_delta(t) for t in by_merchant[merchant_id]]
        debits = [d for d in deltas if d > 0]
        credits = [-d for d in deltas if d < 0]
        net = sum(debits) - sum(credits)
        line = MerchantLine(
            merchant=merchant,
            debit_count=len(debits),
            debit_amount=sum(debits),
            credit_count=len(credits),
            credit_amount=sum(credits),
            fee=fee_for(net, merchant.fee_bp),
        )
        lines.append(line)
        if net == 0:
            continue
        key = f"{BookOp.SETTLEMENT.value.upper()}|{business_date}|{run}|{merchant_id}"
        entries = (Entry(CLEARING_ACCOUNT, -net), Entry(FEE_ACCOUNT, line.fee), Entry(line.paid_to, line.payout))
        postings.append(
            (
                (
                    _book_txn(
                        key,
                        BookOp.SETTLEMENT,
                        business_date=business_date,
                        merchant_id=merchant_id,
                        amount=net,
                        effects=entries,
                    ),
                ),
                entries,
            )
        )
    cutover = _book_txn(
        f"{prefix}{run}", BookOp.CUTOVER, business_date=business_date, merchant_id="", amount=0, effects=()
    )
    postings.append(((cutover,), ()))
    return SettlementRun(
        business_date=business_date,
        run=run,
        lines=tuple(lines),
        postings=tuple(postings),
        settled_keys=tuple(settled),
        unknown_merchants=tuple(sorted(unknown)),
    )


def report_csv(run: SettlementRun) -> str:
    """The clearing report of one run: one row per merchant, amounts in minor units."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for line in run.lines:
        merchant = line.merchant
        writer.writerow(
            (
                run.business_date,
                run.run,
                merchant.merchant_id,
                merchant.name,
                merchant.settlement,
                line.debit_count,
                line.debit_amount,
                line.credit_count,
                line.credit_amount,
                line.net,
                merchant.fee_bp,
                line.fee,
                line.payout,
                line.paid_to,
                merchant.account_id,
            )
        )
    return out.getvalue()
