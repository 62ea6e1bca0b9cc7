"""``acqsim ledger check``: every invariant of the books, over the whole store.

1. All entries sum to zero, and the entries of each transaction sum to zero (double entry).
2. Each transaction's stored entries are exactly the entries its recorded effects (and no others): nothing
   posted twice, nothing lost between the transaction row and the entries table.
3. Every account's balance equals the sum of its entries; its held amount equals its open holds; so
   available = balance − holds.
4. Every open hold belongs to a pre-authorisation in state ``held``, and every such pre-authorisation has one.
5. No refund total exceeds its original, and each original's refund total equals the sum of the refund
   changes recorded by the refunds (and their reversals) naming it; no hold is negative.
6. Every card's day counter (``card_counters``: debits, wrong PINs) equals what its transactions' effects add up
   to: none lost or counted twice by a commit.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from core_ledger.model import Entry, HoldChange, RefundChange, TxnStatus
from core_ledger.store import LedgerStore, counter_totals
from wire.masking import mask_pan


def check_store(store: LedgerStore) -> list[str]:
    """Every invariant violated by what ``store`` holds, as one line each (empty: the books are sound)."""
    problems: list[str] = []
    state = store.load()
    entries = store.entries()
    total = sum(e.amount for e in entries)
    if total != 0:
        problems.append(f"all entries sum to {total}, not 0")
    per_account: dict[str, int] = defaultdict(int)
    per_txn: dict[str, Counter[tuple[str, int]]] = defaultdict(Counter)
    for entry in entries:
        per_account[entry.account_id] += entry.amount
        per_txn[entry.txn_key][(entry.account_id, entry.amount)] += 1
    for key, legs in per_txn.items():
        if sum(amount * count for (_, amount), count in legs.items()) != 0:
            problems.append(f"transaction {key}: entries do not sum to 0")
        if key not in state.txns:
            problems.append(f"entries under {key}, which is not a recorded transaction")
    refunds: dict[str, int] = defaultdict(int)
    for txn in state.txns.values():
        for effect in txn.effects:
            if isinstance(effect, RefundChange):
                refunds[effect.txn] += effect.delta
    for txn in state.txns.values():
        if txn.refunded != refunds.get(txn.key, 0):
            problems.append(f"transaction {txn.key}: refunded {txn.refunded} != its refunds {refunds.get(txn.key, 0)}")
        expected = Counter((e.account_id, e.amount) for e in txn.effects if isinstance(e, Entry))
        if per_txn.get(txn.key, Counter()) != expected:
            problems.append(f"transaction {txn.key}: stored entries differ from its effects (posted twice or lost)")
        if txn.refunded < 0 or txn.refunded > max(txn.amount, 0):  # a settlement's amount (net) may be < 0
            problems.append(f"transaction {txn.key}: refunded {txn.refunded} outside 0..{txn.amount}")
        if any(isinstance(e, HoldChange) and e.amount < 0 for e in txn.effects):
            problems.append(f"transaction {txn.key}: negative hold")
        if txn.status is TxnStatus.HELD and txn.key not in state.holds:
            problems.append(f"pre-authorisation {txn.key} is held but has no open hold")
    for account in state.accounts.values():
        summed = per_account.get(account.account_id, 0)
        if summed != account.balance:
            problems.append(f"account {account.account_id}: balance {account.balance} != sum of entries {summed}")
        held = sum(amount for acct, amount in state.holds.values() if acct == account.account_id)
        if held != account.held:
            problems.append(f"account {account.account_id}: held {account.held} != open holds {held}")
    for owner in state.holds:
        preauth = state.txns.get(owner)
        if preauth is None or preauth.status is not TxnStatus.HELD:
            problems.append(f"hold {owner} has no pre-authorisation in state held")
    counted = {
        (pan, day, kind): total
        for pan, day, kind, total in counter_totals(e for txn in state.txns.values() for e in txn.effects)
    }
    stored = {(pan, day, kind): total for pan, day, kind, total in state.counter_rows()}
    for pan, day, kind in sorted(counted.keys() | stored.keys()):
        if counted.get((pan, day, kind), 0) != stored.get((pan, day, kind), 0):
            problems.append(
                f"card {mask_pan(pan)} on {day}: counter {kind} is {stored.get((pan, day, kind), 0)}, "
                f"its transactions add up to {counted.get((pan, day, kind), 0)}"
            )
    return problems
