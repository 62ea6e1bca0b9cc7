"""Opening a ledger: the store for a ``--db`` setting, seeding from the configuration, the service."""

from __future__ import annotations

from acqsim.config import AcqsimConfig
from core_ledger.engine import LedgerEngine
from core_ledger.seed import CardSeed, MerchantSeed, add_cards, add_merchants, base_state
from core_ledger.service import LedgerService
from core_ledger.sqlite_store import SqliteStore
from core_ledger.state import LedgerState
from core_ledger.store import StoreError


def open_store(db: str) -> SqliteStore:
    """A store for ``db``: a SQLite path (the default). PostgreSQL URLs are not supported yet."""
    if db.startswith(("postgresql://", "postgres://")):
        raise StoreError("the PostgreSQL backend is not built yet; use a SQLite path")
    return SqliteStore(db)


def seed_store(store: SqliteStore, state: LedgerState, config: AcqsimConfig) -> int:
    """Add the configuration's merchants and cards that the store does not have yet. Returns cards added."""
    if not state.accounts:
        state.accounts.update(base_state().accounts)
    add_merchants(
        state,
        (
            MerchantSeed(
                merchant_id=m.merchant_id,
                name=m.name,
                settlement=m.settlement,
                aggregator=m.aggregator,
                fee_bp=m.fee_bp,
            )
            for m in config.merchants
        ),
    )
    openings = add_cards(
        state,
        (
            CardSeed(
                pan=c.pan,
                expiry=c.expiry,
                status=c.status,
                balance=c.balance,
                daily_limit=c.daily_limit,
                holder=c.holder,
            )
            for c in config.cards
        ),
    )
    store.save_static(state)
    for txn in openings:
        state.txns[txn.key] = txn
        state.apply(txn.effects)
    touched = {e.account_id for t in openings for e in t.effects if hasattr(e, "account_id")}
    store.commit(
        [((t,), t.effects) for t in openings], {a: (state.accounts[a].balance, state.accounts[a].held) for a in touched}
    )
    return len(openings)


def open_service(db: str, config: AcqsimConfig | None = None) -> LedgerService:
    store = open_store(db)
    state = store.load()
    if config is not None:
        seed_store(store, state, config)
    return LedgerService(store, LedgerEngine(state))
