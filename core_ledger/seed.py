"""Opening the books: accounts, cards and merchants from plain fixtures, opening balances as postings."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable

from core_ledger.api import LedgerAnswer
from core_ledger.model import (
    CLEARING_ACCOUNT,
    EQUITY_ACCOUNT,
    FEE_ACCOUNT,
    Account,
    AccountKind,
    BookOp,
    Card,
    CardStatus,
    Entry,
    Merchant,
    Txn,
    TxnStatus,
)
from core_ledger.state import LedgerState
from wire.constants import ResponseCode


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CardSeed:
    pan: str
    expiry: str
    status: str = "good"
    balance: int = 0
    daily_limit: int | None = None
    holder: str = "CARDHOLDER"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class MerchantSeed:
    merchant_id: str
    name: str
    settlement: str = "direct"
    aggregator: str | None = None
    fee_bp: int = 0


def card_account_id(pan: str) -> str:
    """A cardholder account id that does not reveal the PAN (first 6, last 4, and a digest to keep it unique)."""
    digest = hashlib.sha256(pan.encode()).hexdigest()[:8].upper()
    return f"CH-{pan[:6]}{pan[-4:]}-{digest}"


def merchant_account_id(merchant_id: str) -> str:
    return f"MER-{merchant_id}"


def aggregator_account_id(name: str) -> str:
    return "AGG-" + "".join(c if c.isalnum() else "_" for c in name.upper())


def base_state() -> LedgerState:
    state = LedgerState()
    for account_id, kind, name in (
        (EQUITY_ACCOUNT, AccountKind.EQUITY, "bank equity (opening balances)"),
        (CLEARING_ACCOUNT, AccountKind.CLEARING, "acquirer clearing"),
        (FEE_ACCOUNT, AccountKind.FEE_INCOME, "merchant discount fee income"),
    ):
        state.accounts[account_id] = Account(account_id=account_id, kind=kind, name=name)
    return state


def opening_txn(pan: str, account_id: str, amount: int) -> Txn:
    effects = (Entry(account_id, amount), Entry(EQUITY_ACCOUNT, -amount))
    return Txn(
        key=f"OPENING|{account_id}",
        op=BookOp.OPENING,
        pan=pan,
        amount=amount,
        terminal_id="",
        merchant_id="",
        business_date="00000000",
        rrn="",
        fingerprint="opening",
        answer=LedgerAnswer(response_code=ResponseCode.APPROVED, rrn=""),
        status=TxnStatus.POSTED,
        effects=effects,
        settled=True,
    )


def add_merchants(state: LedgerState, merchants: Iterable[MerchantSeed]) -> None:
    for seed in merchants:
        account_id = merchant_account_id(seed.merchant_id)
        state.accounts.setdefault(account_id, Account(account_id=account_id, kind=AccountKind.MERCHANT, name=seed.name))
        aggregator = None
        if seed.settlement == "secondary":
            aggregator = aggregator_account_id(seed.aggregator or "AGGREGATOR")
            state.accounts.setdefault(
                aggregator,
                Account(account_id=aggregator, kind=AccountKind.MERCHANT, name=seed.aggregator or "aggregator"),
            )
        state.merchants[seed.merchant_id] = Merchant(
            merchant_id=seed.merchant_id,
            name=seed.name,
            account_id=account_id,
            settlement=seed.settlement,
            aggregator_account_id=aggregator,
            fee_bp=seed.fee_bp,
        )


def add_cards(state: LedgerState, cards: Iterable[CardSeed]) -> list[Txn]:
    """Add cards and return their opening-balance transactions (the caller commits them)."""
    openings = []
    for seed in cards:
        if seed.pan in state.cards:
            continue
        account_id = card_account_id(seed.pan)
        state.accounts[account_id] = Account(account_id=account_id, kind=AccountKind.CARDHOLDER, name=seed.holder)
        state.cards[seed.pan] = Card(
            pan=seed.pan,
            account_id=account_id,
            expiry=seed.expiry,
            status=CardStatus(seed.status),
            daily_limit=seed.daily_limit,
        )
        if seed.balance:
            openings.append(opening_txn(seed.pan, account_id, seed.balance))
    return openings
