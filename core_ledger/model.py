"""The ledger's data: accounts, cards, merchants, transactions, holds, and the effects that change them.

Every change to the ledger is an :class:`Effect`. A transaction records the effects it applied, so reversing
it is applying their inverses — one rule for every operation, and nothing to forget.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import ClassVar, Final

from core_ledger.api import LedgerAnswer, LedgerOp


class AccountKind(enum.StrEnum):
    CARDHOLDER = "cardholder"
    MERCHANT = "merchant"  # merchant settlement account (or an aggregator's, for secondary settlement)
    CLEARING = "clearing"  # acquirer clearing: card spend waits here until the day's cut-over
    FEE_INCOME = "fee_income"
    EQUITY = "equity"  # the other side of opening balances


class BookOp(enum.StrEnum):
    """Transactions the bank books itself (not requested over the host link)."""

    OPENING = "opening"  # a card's opening balance, against bank equity
    CUTOVER = "cutover"  # a business day closed by a settlement run (no entries)
    SETTLEMENT = "settlement"  # clearing → payee (merchant or aggregator) and fee income
    AGGREGATOR_PAYOUT = "aggregator_payout"  # 二清: the aggregator pays its sub-merchant
    SCHEME_CLEARING = "scheme_clearing"  # a line of the scheme's clearing file (core_ledger/clearing.py)
    WALLET_SETTLEMENT = "wallet_settlement"  # a QR wallet's takings for a merchant (core_ledger/walletsettle.py)


def parse_op(value: str) -> LedgerOp | BookOp:
    return BookOp(value) if value in BookOp.__members__.values() else LedgerOp(value)


class CardStatus(enum.StrEnum):
    GOOD = "good"
    LOST = "lost"
    STOLEN = "stolen"
    BLOCKED = "blocked"
    RESTRICTED = "restricted"


class TxnStatus(enum.StrEnum):
    DECLINED = "declined"
    POSTED = "posted"  # purchase, completion, refund, transfer, balance, cancel, void
    HELD = "held"  # pre-authorisation with an open hold
    COMPLETED = "completed"  # pre-authorisation whose hold a completion used
    CANCELLED = "cancelled"  # pre-authorisation released by a cancel
    VOIDED = "voided"  # purchase or completion undone by a void
    REVERSED = "reversed"  # undone by a reversal
    TOMBSTONE = "tombstone"  # a reversal arrived first: the original must never post


CLEARING_ACCOUNT: Final = "ACQ-CLEARING"
FEE_ACCOUNT: Final = "ACQ-FEES"
EQUITY_ACCOUNT: Final = "BANK-EQUITY"

TxnKey = tuple[str, str]  # (acquirer 32, RRN 37): the idempotency key
#: (acquirer 32, terminal 41, STAN 11, local date 13, local time 12): what field 90 can name an original by.
TxnRef = tuple[str, str, str, str, str]


def key_text(key: TxnKey) -> str:
    return "|".join(key)


def ref_text(ref: TxnRef) -> str:
    """A transaction's field-90 reference as stored; the acquirer without leading zeros (90 carries it as n11)."""
    acquirer, *rest = ref
    return "|".join((acquirer.lstrip("0") or "0", *rest))


def ref_day(ref: str) -> str:
    """A field-90 reference without its time: what the fallback index is keyed by."""
    return ref.rsplit("|", 1)[0]


@dataclasses.dataclass(slots=True, kw_only=True)
class Account:
    account_id: str
    kind: AccountKind
    name: str
    balance: int = 0
    held: int = 0

    @property
    def available(self) -> int:
        return self.balance - self.held


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Card:
    pan: str
    account_id: str
    expiry: str  # YYMM
    status: CardStatus = CardStatus.GOOD
    daily_limit: int | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Merchant:
    merchant_id: str
    name: str
    account_id: str
    settlement: str = "direct"  # direct (一清) | secondary (二清)
    aggregator_account_id: str | None = None
    fee_bp: int = 0


# --- effects -------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Entry:
    """One leg of a double-entry transfer: ``amount`` added to the account's balance."""

    account_id: str
    amount: int

    def inverse(self) -> Entry:
        return Entry(self.account_id, -self.amount)


@dataclasses.dataclass(frozen=True, slots=True)
class HoldChange:
    """A hold of ``amount`` on ``account_id`` owned by the pre-authorisation ``owner`` placed or released."""

    owner: str
    account_id: str
    amount: int
    placed: bool

    def inverse(self) -> HoldChange:
        return HoldChange(self.owner, self.account_id, self.amount, not self.placed)


@dataclasses.dataclass(frozen=True, slots=True)
class StatusChange:
    txn: str
    old: TxnStatus
    new: TxnStatus

    def inverse(self) -> StatusChange:
        return StatusChange(self.txn, self.new, self.old)


@dataclasses.dataclass(frozen=True, slots=True)
class RefundChange:
    txn: str
    delta: int

    def inverse(self) -> RefundChange:
        return RefundChange(self.txn, -self.delta)


#: The card counters' kinds as stored (an effect's JSON tag and ``card_counters.kind``): debits against the daily
#: limit, and wrong PINs against the PIN-try limit.
DAILY_DEBITS: Final = "D"
PIN_FAILURES: Final = "P"


@dataclasses.dataclass(frozen=True, slots=True)
class DailyUsage:
    KIND: ClassVar[str] = DAILY_DEBITS

    pan: str
    business_date: str
    delta: int

    def inverse(self) -> DailyUsage:
        return DailyUsage(self.pan, self.business_date, -self.delta)


@dataclasses.dataclass(frozen=True, slots=True)
class PinFailure:
    """A wrong PIN counted against the card for its business day (recorded on the declined PIN-failure report;
    like daily usage, kept in the store's ``card_counters`` by the commit that records it)."""

    KIND: ClassVar[str] = PIN_FAILURES

    pan: str
    business_date: str
    delta: int = 1

    def inverse(self) -> PinFailure:
        return PinFailure(self.pan, self.business_date, -self.delta)


Effect = Entry | HoldChange | StatusChange | RefundChange | DailyUsage | PinFailure


@dataclasses.dataclass(slots=True, kw_only=True)
class Txn:
    """A transaction as the ledger remembers it (mutable fields change through effects only)."""

    key: str
    op: LedgerOp | BookOp
    pan: str
    amount: int
    terminal_id: str
    merchant_id: str
    business_date: str  # YYYYMMDD
    rrn: str
    fingerprint: str
    answer: LedgerAnswer
    status: TxnStatus
    original: str | None = None
    auth_code: str | None = None
    refunded: int = 0
    effects: tuple[Effect, ...] = ()
    settled: bool = False
    #: The field-90 reference (:func:`ref_text`): how an older client, which does not send the original's RRN,
    #: names this transaction. Empty for the bank's own bookings.
    ref: str = ""
    #: Posted on a scheme's stand-in advice whatever the ledger's checks say (the account may go negative).
    forced: bool = False
