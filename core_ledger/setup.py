"""Opening a ledger: the store for a ``--db`` setting, seeding from the configuration, the service."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from acqkit.config import AcqsimConfig, CardFixture
from core_ledger.engine import DEFAULT_COMPLETION_TOLERANCE, LedgerEngine
from core_ledger.history import RECENT_TXNS_KEPT
from core_ledger.seed import CardSeed, MerchantSeed, add_cards, add_merchants, base_state
from core_ledger.service import LedgerService
from core_ledger.sqlite_store import SqliteStore
from core_ledger.state import LedgerState
from core_ledger.store import LedgerStore

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def open_store(db: str) -> LedgerStore:
    """A store for ``db``: a ``postgresql://`` URL, or else a SQLite file path (the default)."""
    if db.startswith(POSTGRES_SCHEMES):
        from core_ledger.postgres_store import PostgresStore

        return PostgresStore(db)
    return SqliteStore(db)


def seed(
    store: LedgerStore, state: LedgerState, *, cards: Iterable[CardSeed] = (), merchants: Iterable[MerchantSeed] = ()
) -> int:
    """Add merchants and cards that ``state`` (loaded from ``store``) does not have yet, with the bank's own
    accounts if the store is empty, and post the opening balances. Cards already present are left alone.
    Returns the number of cards added."""
    if not state.accounts:
        state.accounts.update(base_state().accounts)
    add_merchants(state, merchants)
    before = len(state.cards)
    openings = add_cards(state, cards)
    store.save_static(state)
    for txn in openings:
        state.add_txn(txn)
        state.apply(txn.effects)
    store.commit([((t,), t.effects) for t in openings])
    return len(state.cards) - before


def seed_store(store: LedgerStore, state: LedgerState, config: AcqsimConfig) -> int:
    """:func:`seed` with the configuration's demo cards and merchants."""
    return seed(
        store,
        state,
        merchants=[
            MerchantSeed(
                merchant_id=m.merchant_id,
                name=m.name,
                settlement=m.settlement,
                aggregator=m.aggregator,
                fee_bp=m.fee_bp,
            )
            for m in config.merchants
        ],
        cards=card_seeds(config.cards),
    )


def card_seeds(cards: Iterable[CardFixture]) -> list[CardSeed]:
    """The ledger's side of configured cards: account data only (their PINs and PVVs stay in the configuration)."""
    return [
        CardSeed(
            pan=c.pan,
            expiry=c.expiry,
            status=c.status,
            balance=c.balance,
            daily_limit=c.daily_limit,
            holder=c.holder,
        )
        for c in cards
    ]


def open_service(
    db: str,
    config: AcqsimConfig | None = None,
    *,
    completion_tolerance: Decimal = DEFAULT_COMPLETION_TOLERANCE,
    keep_txns: int = RECENT_TXNS_KEPT,
) -> LedgerService:
    """The service over the store for ``db``, seeded with ``config``'s demo cards and merchants if given; the
    ``keep_txns`` most recent transactions in memory, older ones read from the store when asked for."""
    store = open_store(db)
    state = store.load(keep=keep_txns)
    if config is not None:
        seed_store(store, state, config)
    return LedgerService(store, LedgerEngine(state, completion_tolerance=completion_tolerance))
