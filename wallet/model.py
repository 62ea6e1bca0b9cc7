"""The wallet host's records. Amounts are minor units (fen); times are Unix seconds (floats)."""

from __future__ import annotations

import dataclasses
import enum
from typing import Final

from wire.field59 import Wallet

#: Prefix of the account that collects a merchant's QR takings (one per merchant id).
MERCHANT_ACCOUNT_PREFIX: Final = "MERCHANT:"
#: Prefix of the account (one per wallet) that holds what end-of-day settlement paid out to the acquirer.
SETTLEMENT_ACCOUNT_PREFIX: Final = "SETTLEMENT:"


class PaymentState(enum.StrEnum):
    PENDING = "pending"  # waits for the consumer's password
    PAID = "paid"
    DECLINED = "declined"
    REVERSED = "reversed"
    VOIDED = "voided"
    CLOSED = "closed"  # pending too long: the consumer never confirmed


class OrderState(enum.StrEnum):
    OPEN = "open"
    PAID = "paid"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Account:
    account_id: str
    wallet: Wallet
    balance: int
    #: salt ‖ scrypt hash of the TEST wallet password, hex; empty for merchant accounts.
    password_hash: str = ""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class PaymentCode:
    code: str
    account_id: str
    expires_at: float
    used: bool = False


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Payment:
    voucher: str
    key: str  # the request that made it: "TI ST DT" (被扫) or the order number (主扫)
    account_id: str
    merchant_id: str
    terminal_id: str
    amount: int
    state: PaymentState
    created_at: float
    refunded: int = 0
    order: str = ""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Order:
    order: str
    key: str
    merchant_id: str
    terminal_id: str
    amount: int
    expires_at: float
    state: OrderState = OrderState.OPEN
    voucher: str = ""


class BatchState(enum.StrEnum):
    OPEN = "open"  # totalled and frozen; the acquirer's ledger may or may not have posted it yet
    SETTLED = "settled"  # the ledger posted it (acknowledged by ``acqsim wallet settle``)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SettlementBatch:
    """One wallet's takings for one merchant up to one business date, as settled to the acquirer once.

    ``amount`` is the net (payments less refunds and voids since the last batch): negative when a day gave
    back more than it took."""

    wallet: Wallet
    business_date: str  # YYYYMMDD (UTC)
    merchant_id: str
    amount: int
    count: int  # payments in the batch
    state: BatchState = BatchState.OPEN

    @property
    def key(self) -> str:
        return batch_key(self.wallet, self.business_date, self.merchant_id)


def batch_key(wallet: Wallet, business_date: str, merchant_id: str) -> str:
    """A settlement batch's key: (wallet, business date, merchant)."""
    return f"{wallet.value}|{business_date}|{merchant_id}"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SettledItem:
    """What one payment put into one batch (its net less what earlier batches took)."""

    batch_key: str
    voucher: str
    amount: int


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Answered:
    """The answer first given to a merchant-side request key: a retry gets it again, nothing is done twice."""

    key: str
    answer: str  # the encoded answer message (ASCII TLV)


Record = Account | PaymentCode | Payment | Order | Answered | SettlementBatch | SettledItem


@dataclasses.dataclass(slots=True)
class WalletBook:
    """Everything the wallet host knows, in memory (loaded from its store at start)."""

    accounts: dict[str, Account] = dataclasses.field(default_factory=dict)
    codes: dict[str, PaymentCode] = dataclasses.field(default_factory=dict)
    payments: dict[str, Payment] = dataclasses.field(default_factory=dict)  # by voucher
    orders: dict[str, Order] = dataclasses.field(default_factory=dict)
    answered: dict[str, str] = dataclasses.field(default_factory=dict)
    batches: dict[str, SettlementBatch] = dataclasses.field(default_factory=dict)  # by batch key
    #: voucher → what settlement batches have taken of the payment so far
    settled: dict[str, int] = dataclasses.field(default_factory=dict)

    def apply(self, records: tuple[Record, ...]) -> None:
        for record in records:
            match record:
                case Account():
                    self.accounts[record.account_id] = record
                case PaymentCode():
                    self.codes[record.code] = record
                case Payment():
                    self.payments[record.voucher] = record
                case Order():
                    self.orders[record.order] = record
                case Answered():
                    self.answered[record.key] = record.answer
                case SettlementBatch():
                    self.batches[record.key] = record
                case SettledItem():  # written once per (batch, voucher): never applied twice
                    self.settled[record.voucher] = self.settled.get(record.voucher, 0) + record.amount

    def payment_by_key(self, key: str) -> Payment | None:
        return next((p for p in self.payments.values() if p.key == key), None)

    def total(self) -> int:
        """Sum of every balance: moving money never changes it (each change debits one account and credits
        another)."""
        return sum(a.balance for a in self.accounts.values())
