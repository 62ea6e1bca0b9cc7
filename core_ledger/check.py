"""``acqsim ledger check``: every invariant of the books, over the whole store."""

from __future__ import annotations

from core_ledger.model import HoldChange, TxnStatus
from core_ledger.sqlite_store import SqliteStore


def check_store(store: SqliteStore) -> list[str]:
    problems: list[str] = []
    state = store.load()
    total, per_account = store.entry_sums()
    if total != 0:
        problems.append(f"all entries sum to {total}, not 0")
    for account in state.accounts.values():
        summed = per_account.get(account.account_id, 0)
        if summed != account.balance:
            problems.append(f"account {account.account_id}: balance {account.balance} != sum of entries {summed}")
        held = sum(amount for acct, amount in state.holds.values() if acct == account.account_id)
        if held != account.held:
            problems.append(f"account {account.account_id}: held {account.held} != open holds {held}")
    for owner in state.holds:
        txn = state.txns.get(owner)
        if txn is None or txn.status is not TxnStatus.HELD:
            problems.append(f"hold {owner} has no pre-authorisation in state held")
    for txn in state.txns.values():
        if txn.status is TxnStatus.HELD and txn.key not in state.holds:
            problems.append(f"pre-authorisation {txn.key} is held but has no open hold")
        if txn.refunded > txn.amount:
            problems.append(f"transaction {txn.key}: refunded {txn.refunded} exceeds amount {txn.amount}")
        if any(isinstance(e, HoldChange) and e.amount < 0 for e in txn.effects):
            problems.append(f"transaction {txn.key}: negative hold")
    return problems
