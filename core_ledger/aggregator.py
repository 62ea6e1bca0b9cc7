"""二清: an aggregator's pooled account and its payout to its sub-merchants. No I/O (docs/clearing.md).

In mode ``secondary`` the acquirer's settlement run (:mod:`core_ledger.settlement`) pays a sub-merchant's day
to its aggregator's account — the pool. The money is the aggregator's to hold from then on: it pays each
sub-merchant's amount on, less its own fee, ``delay_days`` after that business day (:class:`PayoutPolicy`).
Until then the sub-merchant is owed money that sits outside the licensed acquirer; if the aggregator fails
first, whatever is still owed is lost to the sub-merchants (:func:`pool_view`).

A payout is booked ``AGGPAY|<settlement key>``: pool −(amount − fee), sub-merchant +(amount − fee); the
aggregator's fee stays in the pool as the aggregator's own money. Each settlement is paid out once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Final

from core_ledger.api import LedgerAnswer
from core_ledger.model import BookOp, Entry, Txn, TxnStatus
from core_ledger.settlement import fee_for
from core_ledger.state import LedgerState
from core_ledger.store import Posting
from wire.constants import ResponseCode

PAYOUT_KEY_PREFIX: Final = "AGGPAY|"
#: Defaults: paid on two days after the business day, 0.30 % kept by the aggregator.
DEFAULT_DELAY_DAYS: Final = 2
DEFAULT_FEE_BP: Final = 30


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class PayoutPolicy:
    delay_days: int = DEFAULT_DELAY_DAYS
    fee_bp: int = DEFAULT_FEE_BP

    def __post_init__(self) -> None:
        if self.delay_days < 0 or not 0 <= self.fee_bp <= 10_000:
            raise ValueError("delay_days must be ≥ 0 and fee_bp 0..10000")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class PoolItem:
    """One sub-merchant's settled day, credited to the pool."""

    settlement_key: str
    merchant_id: str
    business_date: str
    amount: int  # what the acquirer paid into the pool
    fee: int  # what the aggregator keeps
    due_date: str  # YYYYMMDD: when the aggregator pays it on
    paid: bool

    @property
    def owed(self) -> int:
        """What the sub-merchant is to receive."""
        return self.amount - self.fee


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class PoolView:
    aggregator_account: str
    balance: int  # the pool account's balance
    owed: int  # to sub-merchants, not yet paid
    items: tuple[PoolItem, ...]

    @property
    def aggregator_own(self) -> int:
        """The part of the pool that is the aggregator's own (its fees): ``balance − owed``."""
        return self.balance - self.owed


def _date(text: str) -> dt.date:
    return dt.date(int(text[:4]), int(text[4:6]), int(text[6:8]))


def _pool_credit(txn: Txn, aggregator_account: str) -> int:
    return sum(e.amount for e in txn.effects if isinstance(e, Entry) and e.account_id == aggregator_account)


def pool_items(state: LedgerState, aggregator_account: str, policy: PayoutPolicy) -> list[PoolItem]:
    items = []
    for txn in state.txns.values():
        if txn.op is not BookOp.SETTLEMENT:
            continue
        amount = _pool_credit(txn, aggregator_account)
        if not amount:
            continue
        due = _date(txn.business_date) + dt.timedelta(days=policy.delay_days)
        items.append(
            PoolItem(
                settlement_key=txn.key,
                merchant_id=txn.merchant_id,
                business_date=txn.business_date,
                amount=amount,
                fee=fee_for(amount, policy.fee_bp),
                due_date=due.strftime("%Y%m%d"),
                paid=PAYOUT_KEY_PREFIX + txn.key in state.txns,
            )
        )
    return sorted(items, key=lambda item: (item.business_date, item.merchant_id))


def pool_view(state: LedgerState, aggregator_account: str, policy: PayoutPolicy) -> PoolView:
    items = pool_items(state, aggregator_account, policy)
    return PoolView(
        aggregator_account=aggregator_account,
        balance=state.accounts[aggregator_account].balance,
        owed=sum(item.owed for item in items if not item.paid),
        items=tuple(items),
    )


def plan_payout(state: LedgerState, aggregator_account: str, as_of: str, policy: PayoutPolicy) -> list[Posting]:
    """The aggregator's payout run on ``as_of`` (YYYYMMDD): every unpaid item due by then."""
    postings: list[Posting] = []
    for item in pool_items(state, aggregator_account, policy):
        if item.paid or item.due_date > as_of:
            continue
        payee = state.merchants[item.merchant_id].account_id
        entries = (Entry(aggregator_account, -item.owed), Entry(payee, item.owed))
        txn = Txn(
            key=PAYOUT_KEY_PREFIX + item.settlement_key,
            op=BookOp.AGGREGATOR_PAYOUT,
            pan="",
            amount=item.owed,
            terminal_id="",
            merchant_id=item.merchant_id,
            business_date=as_of,
            rrn="",
            fingerprint=BookOp.AGGREGATOR_PAYOUT.value,
            answer=LedgerAnswer(response_code=ResponseCode.APPROVED, rrn=""),
            status=TxnStatus.POSTED,
            effects=entries,
            settled=True,
        )
        postings.append(((txn,), entries))
    return postings
