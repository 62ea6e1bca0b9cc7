"""End-of-day settlement of the wallet's takings to the acquirer, sans-IO (docs/qr.md, "Settlement").

For business date D (UTC), :func:`open_batches` totals, per (wallet, merchant), every payment made on D or
earlier whose net the earlier batches have not taken yet:

- net of a payment = amount − refunded while it is paid; 0 once voided, reversed, declined or closed; a
  pending payment waits (it joins a later batch once paid);
- its share of the batch = its net now − what earlier batches took (so a refund or a void after the
  payment's own day was settled goes into the next date's batch, as a negative amount).

The batches of a date are opened once, in one transaction with the items that say what each payment put in
and the money moving in the wallet's own book (``MERCHANT:<id>`` → ``SETTLEMENT:<wallet>``: the takings leave
for the acquirer). Opening again returns the same batches, frozen: a settle run killed after the ledger posted
finds exactly the amounts the ledger holds. A payment arriving for D after D's batches were opened joins
the next date's batches. :func:`mark_batch` records that the acquirer's ledger has posted a batch.
"""

from __future__ import annotations

import dataclasses
import time
from collections import defaultdict
from typing import Final

from wallet.model import (
    MERCHANT_ACCOUNT_PREFIX,
    SETTLEMENT_ACCOUNT_PREFIX,
    Account,
    BatchState,
    Payment,
    PaymentState,
    Record,
    SettledItem,
    SettlementBatch,
    WalletBook,
    batch_key,
)
from wire.field59 import Wallet

DATE_FORMAT: Final = "%Y%m%d"


class SettlementError(Exception):
    """A settlement request the wallet cannot carry out (a bad date, an unknown batch)."""


def business_date(at: float) -> str:
    """The business date (YYYYMMDD, UTC) of a time in Unix seconds."""
    return time.strftime(DATE_FORMAT, time.gmtime(at))


def check_date(value: str) -> str:
    try:
        time.strptime(value, DATE_FORMAT)
    except ValueError:
        raise SettlementError(f"business date {value!r} is not a YYYYMMDD date") from None
    return value


def payment_net(payment: Payment) -> int:
    """What the merchant keeps of a payment now: the amount less refunds while paid, else nothing."""
    return payment.amount - payment.refunded if payment.state is PaymentState.PAID else 0


def batches_of(book: WalletBook, day: str) -> list[SettlementBatch]:
    """The batches of ``day``, in their fixed order (wallet, merchant)."""
    found = [b for b in book.batches.values() if b.business_date == day]
    return sorted(found, key=lambda b: (b.wallet.value, b.merchant_id))


def open_batches(book: WalletBook, day: str) -> tuple[Record, ...]:
    """The records that open ``day``'s batches; nothing if they are open already or nothing is due."""
    check_date(day)
    if batches_of(book, day):
        return ()
    shares: dict[tuple[Wallet, str], list[tuple[str, int]]] = defaultdict(list)
    for payment in book.payments.values():
        if payment.state is PaymentState.PENDING or business_date(payment.created_at) > day:
            continue
        share = payment_net(payment) - book.settled.get(payment.voucher, 0)
        if share:
            wallet = book.accounts[payment.account_id].wallet
            shares[(wallet, payment.merchant_id)].append((payment.voucher, share))
    records: list[Record] = []
    moved: dict[str, int] = defaultdict(int)  # wallet-book account → balance change
    for (wallet, merchant_id), items in sorted(shares.items(), key=lambda kv: (kv[0][0].value, kv[0][1])):
        total = sum(amount for _, amount in items)
        batch = SettlementBatch(
            wallet=wallet, business_date=day, merchant_id=merchant_id, amount=total, count=len(items)
        )
        records.append(batch)
        records.extend(SettledItem(batch_key=batch.key, voucher=voucher, amount=amount) for voucher, amount in items)
        moved[MERCHANT_ACCOUNT_PREFIX + merchant_id] -= total
        moved[SETTLEMENT_ACCOUNT_PREFIX + wallet.value] += total
    for account_id, change in sorted(moved.items()):
        known = book.accounts.get(account_id)
        if known is None:  # the settlement account of a wallet, on its first batch
            wallet = Wallet(account_id.removeprefix(SETTLEMENT_ACCOUNT_PREFIX))
            known = Account(account_id=account_id, wallet=wallet, balance=0)
        records.append(dataclasses.replace(known, balance=known.balance + change))
    return tuple(records)


def mark_batch(book: WalletBook, wallet: Wallet, day: str, merchant_id: str) -> SettlementBatch:
    """The batch marked settled (unchanged if it was already). Raises :class:`SettlementError` if unknown."""
    batch = book.batches.get(batch_key(wallet, day, merchant_id))
    if batch is None:
        raise SettlementError(f"no settlement batch {batch_key(wallet, day, merchant_id)}")
    return dataclasses.replace(batch, state=BatchState.SETTLED)
