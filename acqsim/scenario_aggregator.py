"""``acqsim scenario aggregator-failure``: 一清 beside 二清, day by day, until the aggregator fails.

A real ledger (SQLite, the engine's own rules) runs a few business days for three TEST merchants of one
acquirer: a 一清 merchant the acquirer pays itself, and two sub-merchants of an aggregator (二清). Each day:

1. morning: the acquirer's settlement run for yesterday (T+1): the 一清 merchant is paid; the sub-merchants'
   days go into the aggregator's pooled account;
2. the aggregator's own payout run (unless it has failed): every pooled day ``delay_days`` old is paid on to its
   sub-merchant, less the aggregator's fee;
3. the day's card sales.

On the morning of ``fail_day`` the T+1 settlement still lands in the pool (the acquirer does not know), then the
aggregator fails before its payout. The report: per day the pool's balance, what the sub-merchants are owed, what
they and the 一清 merchant have been paid; and at the failure exactly what each sub-merchant loses (every pooled
day not yet paid on, less the aggregator's fee the sub-merchant had agreed to) — money that never sat with
the licensed acquirer.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from pathlib import Path
from typing import Final

from acqkit.config import DEFAULT_ACQUIRER_ID
from core_ledger.aggregator import PayoutPolicy, plan_payout, pool_view
from core_ledger.api import LedgerOp, LedgerRequest
from core_ledger.engine import LedgerEngine
from core_ledger.seed import CardSeed, MerchantSeed, aggregator_account_id, merchant_account_id
from core_ledger.settlement import plan_settlement
from core_ledger.setup import seed
from core_ledger.sqlite_store import SqliteStore
from core_ledger.store import LedgerStore

AGGREGATOR: Final = "ACQSIM TEST AGGREGATOR"
DIRECT_MERCHANT: Final = "898100000000001"
SUB_MERCHANTS: Final = ("898100000000011", "898100000000012")
MERCHANTS: Final = (
    MerchantSeed(merchant_id=DIRECT_MERCHANT, name="ACQSIM TEST COFFEE (一清)", fee_bp=38),
    MerchantSeed(
        merchant_id=SUB_MERCHANTS[0],
        name="TEST NOODLE STALL (二清)",
        settlement="secondary",
        aggregator=AGGREGATOR,
        fee_bp=60,
    ),
    MerchantSeed(
        merchant_id=SUB_MERCHANTS[1],
        name="TEST FRUIT STAND (二清)",
        settlement="secondary",
        aggregator=AGGREGATOR,
        fee_bp=60,
    ),
)
#: Each day's sales per merchant, fen: 1,000.00 at the 一清 merchant, 500.00 and 300.00 at the sub-merchants.
DEFAULT_SALES: Final = ((DIRECT_MERCHANT, 100_000), (SUB_MERCHANTS[0], 50_000), (SUB_MERCHANTS[1], 30_000))
CARD: Final = CardSeed(pan="6200001000000003", expiry="3012", balance=50_000_000, holder="ZHANG SAN")
ACQUIRER_ID: Final = DEFAULT_ACQUIRER_ID  # the default configuration's field 32


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ScenarioConfig:
    start: dt.date = dt.date(2026, 12, 1)
    #: The aggregator fails on the morning of this day (1 = the first day), after the T+1 settlement.
    fail_day: int = 5
    policy: PayoutPolicy = dataclasses.field(default_factory=PayoutPolicy)
    sales: tuple[tuple[str, int], ...] = DEFAULT_SALES

    def __post_init__(self) -> None:
        if self.fail_day < 2:
            raise ValueError("the aggregator fails on day 2 at the earliest (day 1 has no settlement yet)")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DayRow:
    date: str  # YYYYMMDD
    pool_balance: int
    owed_to_sub_merchants: int
    paid_to_sub_merchants: int
    paid_to_direct_merchant: int
    failed: bool


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ScenarioReport:
    rows: tuple[DayRow, ...]
    lost: dict[str, int]  # sub-merchant id → what it loses
    aggregator_own: int  # the aggregator's fees sitting in the pool at the failure

    @property
    def total_lost(self) -> int:
        return sum(self.lost.values())


def _balance(store: LedgerStore, account_id: str) -> int:
    return store.load().accounts[account_id].balance


def run_scenario(config: ScenarioConfig, data_dir: Path) -> ScenarioReport:
    data_dir.mkdir(parents=True, exist_ok=True)
    store = SqliteStore(data_dir / "aggregator-scenario.sqlite3")
    try:
        return _run(config, store)
    finally:
        store.close()


def _run(config: ScenarioConfig, store: SqliteStore) -> ScenarioReport:
    seed(store, store.load(), cards=[CARD], merchants=MERCHANTS)
    pool = aggregator_account_id(AGGREGATOR)
    stans = itertools.count(1)
    rows: list[DayRow] = []
    for day in range(1, config.fail_day + 1):
        today = config.start + dt.timedelta(days=day - 1)
        yesterday = (today - dt.timedelta(days=1)).strftime("%Y%m%d")
        if day > 1:  # T+1: the acquirer settles yesterday
            run = plan_settlement(store.load(), yesterday)
            store.commit(run.postings, settled=run.settled_keys)
        failed = day == config.fail_day
        if not failed:
            store.commit(plan_payout(store.load(), pool, today.strftime("%Y%m%d"), config.policy))
            clock = dt.datetime.combine(today, dt.time(12), tzinfo=dt.UTC)
            engine = LedgerEngine(store.load(), clock=lambda clock=clock: clock)  # type: ignore[misc]
            for merchant_id, amount in config.sales:
                stan = f"{next(stans):06d}"
                request = LedgerRequest(
                    op=LedgerOp.PURCHASE,
                    acquirer_id=ACQUIRER_ID,
                    terminal_id="10000001",
                    merchant_id=merchant_id,
                    stan=stan,
                    local_time="120000",
                    local_date=today.strftime("%m%d"),
                    transmission=today.strftime("%m%d") + "120000",
                    pan=CARD.pan,
                    rrn=f"{today:%m%d}{stan}00",
                    amount=amount,
                )
                decision = engine.decide(request)
                if not decision.answer.approved:
                    raise RuntimeError(f"scenario sale declined {decision.answer.response_code.value}")
                engine.commit(decision)
                store.commit([(decision.records, decision.effects)])
        state = store.load()
        view = pool_view(state, pool, config.policy)
        rows.append(
            DayRow(
                date=today.strftime("%Y%m%d"),
                pool_balance=view.balance,
                owed_to_sub_merchants=view.owed,
                paid_to_sub_merchants=sum(state.accounts[merchant_account_id(m)].balance for m in SUB_MERCHANTS),
                paid_to_direct_merchant=state.accounts[merchant_account_id(DIRECT_MERCHANT)].balance,
                failed=failed,
            )
        )
    view = pool_view(store.load(), pool, config.policy)
    lost = {m: sum(i.owed for i in view.items if not i.paid and i.merchant_id == m) for m in SUB_MERCHANTS}
    return ScenarioReport(rows=tuple(rows), lost=lost, aggregator_own=view.aggregator_own)
