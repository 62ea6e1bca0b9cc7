"""二清 on a real ledger: the pool over the days, what the sub-merchants are owed and exactly what they lose when
the aggregator fails; the 一清 merchant, paid by the acquirer, loses nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from acqsim.scenario_aggregator import DIRECT_MERCHANT, SUB_MERCHANTS, ScenarioConfig, run_scenario
from core_ledger.aggregator import PayoutPolicy

# Per day: 一清 1,000.00 at 0.38 % → 996.20 paid T+1; sub-merchants 500.00 / 300.00 at 0.60 % → 497.00 / 298.20
# into the pool T+1; the aggregator keeps 0.30 %: 497.00 → 1.49 (1.491), 298.20 → 0.89 (0.8946).
DIRECT_DAY = 99_620
POOL_DAY = 49_700 + 29_820
OWED_DAY = (49_700 - 149) + (29_820 - 89)


def test_the_aggregator_fails_on_day_5_with_two_days_unpaid(tmp_path: Path) -> None:
    report = run_scenario(ScenarioConfig(fail_day=5, policy=PayoutPolicy(delay_days=2, fee_bp=30)), tmp_path)
    pools = [
        (r.date, r.pool_balance, r.owed_to_sub_merchants, r.paid_to_sub_merchants, r.paid_to_direct_merchant)
        for r in report.rows
    ]
    assert pools == [
        ("20261201", 0, 0, 0, 0),
        ("20261202", POOL_DAY, OWED_DAY, 0, DIRECT_DAY),
        ("20261203", 2 * POOL_DAY - OWED_DAY, OWED_DAY, OWED_DAY, 2 * DIRECT_DAY),  # day 1 paid on (due 12-03)
        ("20261204", 3 * POOL_DAY - 2 * OWED_DAY, OWED_DAY, 2 * OWED_DAY, 3 * DIRECT_DAY),
        ("20261205", 4 * POOL_DAY - 2 * OWED_DAY, 2 * OWED_DAY, 2 * OWED_DAY, 4 * DIRECT_DAY),  # failed: no payout
    ]
    assert report.rows[-1].failed
    assert report.lost == {SUB_MERCHANTS[0]: 2 * 49_551, SUB_MERCHANTS[1]: 2 * 29_731}
    assert report.total_lost == 158_564
    assert report.aggregator_own == 4 * (149 + 89)
    assert DIRECT_MERCHANT not in report.lost


@pytest.mark.parametrize(("delay", "unpaid_days"), [(0, 1), (1, 1), (3, 3)])
def test_the_longer_the_delay_the_more_is_lost(tmp_path: Path, delay: int, unpaid_days: int) -> None:
    report = run_scenario(ScenarioConfig(fail_day=5, policy=PayoutPolicy(delay_days=delay, fee_bp=30)), tmp_path)
    assert report.total_lost == unpaid_days * OWED_DAY
