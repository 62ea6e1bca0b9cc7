"""A QR wallet's settlement batches posted into the ledger, each exactly once. No I/O but the store commit.

A batch is one wallet's net takings for one merchant up to one business date (the wallet host totals them:
wallet/settlement.py). Posted as one ``wallet_settlement`` transaction keyed ``WALLETSTL|<wallet>|<date>|
<merchant>``, whose entries sum to zero:

    WALLET-<WALLET> −net      the wallet's settlement account: what the wallet owes the acquirer
    ACQ-FEES        +fee      fee = net × fee_bp / 10,000, rounded half up, same sign as net (0 by default)
    payee           +payout   payout = net − fee; the merchant's account (一清) or its aggregator's (二清)

A batch whose key the ledger holds already is not posted again (a rerun after a crash between the ledger's
commit and the wallet's mark); a batch for a merchant the ledger does not know is left out and reported. The
transaction is born settled: the card settlement run (core_ledger/settlement.py) never pays it twice.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Final

from core_ledger.api import LedgerAnswer
from core_ledger.model import FEE_ACCOUNT, Account, AccountKind, BookOp, Entry, Txn, TxnStatus
from core_ledger.settlement import MODE_SECONDARY, fee_for
from core_ledger.state import LedgerState
from core_ledger.store import LedgerStore, Posting
from wire.constants import ResponseCode

WALLET_ACCOUNT_PREFIX: Final = "WALLET-"
KEY_PREFIX: Final = "WALLETSTL|"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class WalletBatch:
    """A wallet settlement batch as the wallet host reports it."""

    wallet: str  # unionpay | wechat | alipay
    business_date: str  # YYYYMMDD
    merchant_id: str
    amount: int  # net, minor units, may be negative
    count: int  # payments

    @property
    def ledger_key(self) -> str:
        return f"{KEY_PREFIX}{self.wallet}|{self.business_date}|{self.merchant_id}"


def wallet_account(wallet: str) -> str:
    """The ledger account of a wallet's settlement position."""
    return WALLET_ACCOUNT_PREFIX + wallet.upper()


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class PostedBatch:
    batch: WalletBatch
    fee: int
    payout: int
    paid_to: str


def posted_as(state: LedgerState, batch: WalletBatch) -> PostedBatch | None:
    """How the ledger posted ``batch`` (fee, payout, payee read back from its entries), or ``None``."""
    txn = state.txns.get(batch.ledger_key)
    if txn is None:
        return None
    entries = [e for e in txn.effects if isinstance(e, Entry)]
    fee = sum(e.amount for e in entries if e.account_id == FEE_ACCOUNT)
    payees = [e for e in entries if e.account_id not in (FEE_ACCOUNT, wallet_account(batch.wallet))]
    paid_to = payees[0].account_id if payees else ""
    return PostedBatch(batch=batch, fee=fee, payout=sum(e.amount for e in payees), paid_to=paid_to)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class WalletSettlementPlan:
    posted: tuple[PostedBatch, ...]  # posted by this plan
    already: tuple[PostedBatch, ...]  # the ledger holds them already (as it posted them then)
    unknown_merchant: tuple[WalletBatch, ...]  # left out: the ledger has no such merchant
    postings: tuple[Posting, ...]
    new_accounts: tuple[Account, ...]


def plan_wallet_settlement(state: LedgerState, batches: Sequence[WalletBatch], *, fee_bp: int) -> WalletSettlementPlan:
    """What posting ``batches`` into ``state`` takes; nothing is changed."""
    if fee_bp < 0:
        raise ValueError("the wallet fee must be >= 0 basis points")
    posted: list[PostedBatch] = []
    already: list[PostedBatch] = []
    unknown: list[WalletBatch] = []
    postings: list[Posting] = []
    for batch in batches:
        earlier = posted_as(state, batch)
        if earlier is not None:
            already.append(earlier)
            continue
        merchant = state.merchants.get(batch.merchant_id)
        if merchant is None:
            unknown.append(batch)
            continue
        paid_to = merchant.account_id
        if merchant.settlement == MODE_SECONDARY and merchant.aggregator_account_id:
            paid_to = merchant.aggregator_account_id
        fee = fee_for(batch.amount, fee_bp)
        legs = (
            Entry(wallet_account(batch.wallet), -batch.amount),
            Entry(FEE_ACCOUNT, fee),
            Entry(paid_to, batch.amount - fee),
        )
        entries = tuple(e for e in legs if e.amount)
        txn = Txn(
            key=batch.ledger_key,
            op=BookOp.WALLET_SETTLEMENT,
            pan="",
            amount=batch.amount,
            terminal_id="",
            merchant_id=batch.merchant_id,
            business_date=batch.business_date,
            rrn="",
            fingerprint=BookOp.WALLET_SETTLEMENT.value,
            answer=LedgerAnswer(response_code=ResponseCode.APPROVED, rrn=""),
            status=TxnStatus.POSTED,
            effects=entries,
            settled=True,
        )
        postings.append(((txn,), entries))
        posted.append(PostedBatch(batch=batch, fee=fee, payout=batch.amount - fee, paid_to=paid_to))
    needed = {wallet_account(p.batch.wallet) for p in posted}
    if posted:
        needed.add(FEE_ACCOUNT)
    new_accounts = tuple(
        Account(account_id=account_id, kind=AccountKind.CLEARING, name=f"QR wallet settlement {account_id}")
        for account_id in sorted(needed)
        if account_id not in state.accounts and account_id != FEE_ACCOUNT
    )
    return WalletSettlementPlan(
        posted=tuple(posted),
        already=tuple(already),
        unknown_merchant=tuple(unknown),
        postings=tuple(postings),
        new_accounts=new_accounts,
    )


def post_wallet_settlement(store: LedgerStore, batches: Sequence[WalletBatch], *, fee_bp: int) -> WalletSettlementPlan:
    """Plan over the store's state and commit every new batch in ONE store transaction (all or none)."""
    state = store.load()
    plan = plan_wallet_settlement(state, batches, fee_bp=fee_bp)
    if plan.new_accounts:
        state.accounts.update({a.account_id: a for a in plan.new_accounts})
        store.save_static(state)
    if plan.postings:
        store.commit(plan.postings)
    return plan
