"""The ledger view: balances, holds and each merchant's settlement kind, read from the ledger's store.

The store is opened, read and closed for each look (as ``acqsim ledger balance`` does); card numbers leave
masked. A store that does not exist yet is an empty view, never created by looking.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from acqkit.config import AcqsimConfig
from core_ledger.model import AccountKind
from core_ledger.setup import open_store
from wire.masking import mask_pan

SETTLEMENT_NAMES = {"direct": "direct 一清", "secondary": "secondary 二清 (through an aggregator)"}


def ledger_snapshot(config: AcqsimConfig) -> dict[str, Any]:
    db = config.store_path(config.ledger.db)
    if "://" not in db and not Path(db).is_file():
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
