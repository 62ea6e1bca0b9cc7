"""The ledger view: balances, holds and each merchant's settlement kind, read from the ledger's store; and the
postings one transaction made (by its RRN, field 37), for a message clicked at the ledger hop.

The store is opened, read and closed for each look (as ``acqsim ledger balance`` does); card numbers leave
masked. A store that does not exist yet is an empty view, never created by looking.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from acqkit.config import AcqsimConfig
from core_ledger.model import AccountKind, Entry, HoldChange
from core_ledger.setup import open_store
from wire.masking import mask_pan

SETTLEMENT_NAMES = {"direct": "direct 一清", "secondary": "secondary 二清 (through an aggregator)"}


def _store_exists(db: str) -> bool:
    return "://" in db or Path(db).is_file()


def ledger_snapshot(config: AcqsimConfig) -> dict[str, Any]:
    db = config.store_path(config.ledger.db)
    if not _store_exists(db):
        return {"cards": [], "accounts": [], "merchants": [], "holds": 0}
    store = open_store(db)
    try:
        state = store.load()
    finally:
        store.close()
    cards = []
    for card in state.cards.values():
        account = state.accounts[card.account_id]
        cards.append(
            {
                "pan": mask_pan(card.pan),
                "status": str(card.status),
                "balance": account.balance,
                "held": account.held,
                "available": account.available,
            }
        )
    accounts = [
        {"name": a.name, "kind": str(a.kind), "balance": a.balance}
        for a in state.accounts.values()
        if a.kind in (AccountKind.CLEARING, AccountKind.MERCHANT, AccountKind.FEE_INCOME)
    ]
    merchants = [
        {
            "merchant_id": m.merchant_id,
            "name": m.name,
            "settlement": SETTLEMENT_NAMES.get(m.settlement, m.settlement),
            "fee_bp": m.fee_bp,
            "balance": state.accounts[m.account_id].balance if m.account_id in state.accounts else 0,
        }
        for m in state.merchants.values()
    ]
    return {"cards": cards, "accounts": accounts, "merchants": merchants, "holds": len(state.holds)}


def postings_of(config: AcqsimConfig, rrn: str) -> dict[str, Any]:
    """The double-entry postings (and holds placed or released) of the transactions under ``rrn`` — a purchase,
    and its reversal if it has one — read-only from the ledger's store: account (a card's masked), kind,
    amount in minor units, ``debit`` (the balance goes down) or ``credit``."""
    db = config.store_path(config.ledger.db)
    if not _store_exists(db):
        return {"rrn": rrn, "transactions": []}
    store = open_store(db)
    try:
        state = store.load()
        entries = store.entries()
    finally:
        store.close()
    owner_pan = {card.account_id: mask_pan(pan) for pan, card in state.cards.items()}

    def account(account_id: str) -> dict[str, str]:
        known = state.accounts.get(account_id)
        kind = str(known.kind) if known is not None else "?"
        name = owner_pan.get(account_id) or (known.name if known is not None else account_id)
        return {"account": name, "kind": kind}

    transactions = []
    for txn in (t for t in state.txns.values() if t.rrn == rrn):
        lines = [
            {**account(e.account_id), "amount": abs(e.amount), "side": "debit" if e.amount < 0 else "credit"}
            for e in entries
            if e.txn_key == txn.key
        ]
        holds = [
            {**account(h.account_id), "amount": h.amount, "side": "hold placed" if h.placed else "hold released"}
            for h in txn.effects
            if isinstance(h, HoldChange)
        ]
        if not lines:  # a store without the entries table rows (or an older one): the effects say the same
            lines = [
                {**account(e.account_id), "amount": abs(e.amount), "side": "debit" if e.amount < 0 else "credit"}
                for e in txn.effects
                if isinstance(e, Entry)
            ]
        transactions.append({"op": str(txn.op), "status": str(txn.status), "postings": lines + holds})
    return {"rrn": rrn, "transactions": transactions}
