"""The wallet host's settlement batches against the ledger's ``wallet_settlement`` postings (part of ``acqsim
ledger reconcile --wallet``). Read-only.

Matched by key, (wallet, business date, merchant) — ``WALLETSTL|<wallet>|<date>|<merchant>`` at the ledger:

- a batch marked settled at the wallet has exactly its posting at the ledger, for the same net amount;
- a batch still open at the wallet has no posting yet (not a difference: the next ``acqsim wallet settle``
  posts it), or has one — the settle run stopped between the ledger's commit and the wallet's mark: reported
  as ``posted, not marked`` until a rerun marks it;
- every ``wallet_settlement`` posting has its batch at the wallet.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from core_ledger.model import BookOp, Txn
from core_ledger.walletsettle import WalletBatch
from wallet.model import BatchState, SettlementBatch, WalletBook


@dataclasses.dataclass(frozen=True, slots=True)
class SettlementDifference:
    key: str  # the ledger key of the batch
    problem: str
    wallet: str  # the wallet's batch, summarised ("" if none)
    ledger: str  # the ledger's posting, summarised ("" if none)


def _ledger_key(batch: SettlementBatch) -> str:
    return WalletBatch(
        wallet=batch.wallet.value,
        business_date=batch.business_date,
        merchant_id=batch.merchant_id,
        amount=batch.amount,
        count=batch.count,
    ).ledger_key


def _wallet_summary(batch: SettlementBatch) -> str:
    return f"batch {batch.key} net={batch.amount} payments={batch.count} state={batch.state.value}"


def _ledger_summary(txn: Txn) -> str:
    return f"{txn.op.value} key={txn.key} amount={txn.amount} status={txn.status.value}"


def reconcile_wallet_settlement(
    book: WalletBook, ledger: Iterable[Txn]
) -> tuple[int, int, tuple[SettlementDifference, ...]]:
    """(batches matched, batches open and not yet posted, differences)."""
    postings = {txn.key: txn for txn in ledger if txn.op is BookOp.WALLET_SETTLEMENT}
    matched = waiting = 0
    found: list[SettlementDifference] = []
    seen: set[str] = set()
    for batch in sorted(book.batches.values(), key=lambda b: b.key):
        key = _ledger_key(batch)
        seen.add(key)
        txn = postings.get(key)
        shown = _wallet_summary(batch)
        if txn is None:
            if batch.state is BatchState.SETTLED:
                found.append(SettlementDifference(key, "settled at the wallet, no posting at the ledger", shown, ""))
            else:
                waiting += 1
        elif txn.amount != batch.amount:
            found.append(SettlementDifference(key, "amounts differ", shown, _ledger_summary(txn)))
        elif batch.state is BatchState.OPEN:
            problem = "posted, not marked at the wallet (rerun acqsim wallet settle)"
            found.append(SettlementDifference(key, problem, shown, _ledger_summary(txn)))
        else:
            matched += 1
    for key, txn in sorted(postings.items()):
        if key not in seen:
            found.append(
                SettlementDifference(key, "posted at the ledger, no batch at the wallet", "", _ledger_summary(txn))
            )
    return matched, waiting, tuple(found)
