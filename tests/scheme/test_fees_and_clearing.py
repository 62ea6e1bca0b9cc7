"""The fee table (PROTOCOL.md §10 defaults: caps and rounding) and the switch's clearing run: per-member files
whose totals are the sums of the approved transactions, and positions that balance with the switch's income."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core_ledger.api import LedgerOp
from scheme.clearing import build_run
from scheme.core import LegRecord
from scheme.fees import FeeTable
from wire.clearingfile import CardType, Kind, Role, parse_clearing_file, write_clearing_file
from wire.constants import ResponseCode

FEES = FeeTable()
ACQ, ISS_B, ISS_C = "48021000", "63050000", "64100000"


@pytest.mark.parametrize(
    ("amount", "card", "interchange", "network_half"),
    [
        (10_000, CardType.DEBIT, 35, 3),  # 100.00: 0.35 % = 35; 0.0325 % = 3.25 → 3
        (20_000, CardType.DEBIT, 70, 7),  # 0.0325 % of 200.00 = 6.5 → 7 (half up)
        (14_300, CardType.DEBIT, 50, 5),  # 0.35 % = 50.05 → 50; 0.0325 % = 4.6475 → 5
        (371_429, CardType.DEBIT, 1300, 121),  # 0.35 % = 1300.0015 → 1300 (the cap)
        (1_000_000, CardType.DEBIT, 1300, 325),  # 10,000.00: 3500 capped at 1300; 325 exactly the cap
        (2_000_000, CardType.DEBIT, 1300, 325),  # 650 capped at 325
        (1_000_000, CardType.CREDIT, 4500, 325),  # credit: 0.45 %, no cap
        (1, CardType.DEBIT, 0, 0),
        (143, CardType.CREDIT, 1, 0),  # 0.6435 → 1; 0.0465 → 0
    ],
)
def test_fee_table_caps_and_rounding(amount: int, card: CardType, interchange: int, network_half: int) -> None:
    fees = FEES.fees(amount, card)
    assert (fees.interchange, fees.network_issuer, fees.network_acquirer) == (interchange, network_half, network_half)
    assert fees.acquirer_net == amount - interchange - network_half
    assert fees.issuer_net == -(amount - interchange + network_half)


def test_a_refund_gives_interchange_back_and_pays_no_network_fee() -> None:
    fees = FEES.fees(10_000, CardType.DEBIT, Kind.REFUND)
    assert (fees.interchange, fees.network_issuer, fees.acquirer_net, fees.issuer_net) == (35, 0, -9_965, 9_965)


def leg(
    seq: int, amount: int, *, op: LedgerOp = LedgerOp.PURCHASE, issuer: str = ISS_B, card: CardType = CardType.DEBIT
) -> LegRecord:
    return LegRecord(
        acquirer_id=ACQ,
        rrn=f"{seq:012d}",
        mti="0220" if op is LedgerOp.REFUND else "0200",
        op=op,
        issuer_id=issuer,
        masked_pan="623050******0014",
        card_type=card,
        amount=amount,
        currency="156",
        stan=f"{seq:06d}",
        local_date="1204",
        terminal_id="10000001",
        merchant_id="898100000000001",
        response_code=ResponseCode.APPROVED,
        auth_code="000001",
        stand_in=False,
        business_date="20261204",
    )


def test_clearing_files_per_member_with_exact_totals() -> None:
    legs = [
        leg(1, 10_000),
        leg(2, 1_000_000, card=CardType.CREDIT),
        leg(3, 2_000_000),
        leg(4, 5_000, op=LedgerOp.REFUND),
        leg(5, 20_000, issuer=ISS_C),
    ]
    run = build_run(legs, business_date="20261204", switch_id="00010000", members=[ACQ, ISS_B, ISS_C], fees=FEES)
    acq = run.files[ACQ].totals
    assert (acq.details, acq.purchase_count, acq.purchase_amount, acq.refund_count, acq.refund_amount) == (
        5,
        4,
        3_030_000,
        1,
        5_000,
    )
    # interchange: 35 + 4500 + 1300 + 18 (refund: 17.5 → 18) + 70; acquirer network halves: 3 + 325 + 325 + 0 + 7
    assert (acq.interchange, acq.network_fee) == (5_923, 660)
    assert acq.net == (10_000 - 35 - 3) + (1_000_000 - 4500 - 325) + (2_000_000 - 1300 - 325) - (5_000 - 18) + (
        20_000 - 70 - 7
    )
    b = run.files[ISS_B].totals
    assert (b.details, b.purchase_amount, b.refund_amount) == (4, 3_010_000, 5_000)
    assert b.net == -(10_000 - 35 + 3) - (1_000_000 - 4500 + 325) - (2_000_000 - 1300 + 325) + (5_000 - 18)
    assert run.files[ISS_C].totals.net == -(20_000 - 70 + 7)
    assert run.switch_income == 2 * (3 + 325 + 325 + 7)
    assert run.balanced
    assert {r.role for r in run.files[ACQ].records} == {Role.ACQUIRER}
    for clearing in run.files.values():
        assert parse_clearing_file(write_clearing_file(clearing)) == clearing


def test_a_member_without_transactions_gets_an_empty_file() -> None:
    run = build_run([], business_date="20261204", switch_id="00010000", members=[ACQ, ISS_B], fees=FEES)
    assert set(run.files) == {ACQ, ISS_B} and all(not f.records for f in run.files.values())
    assert run.balanced and run.switch_income == 0


@given(
    st.lists(
        st.tuples(
            st.integers(1, 10**8), st.sampled_from([ISS_B, ISS_C, ACQ]), st.sampled_from(CardType), st.booleans()
        ),
        max_size=30,
    )
)
def test_positions_and_switch_income_always_sum_to_zero(rows: list[tuple[int, str, CardType, bool]]) -> None:
    legs = [
        leg(i, amount, issuer=issuer, card=card, op=LedgerOp.REFUND if refund else LedgerOp.PURCHASE)
        for i, (amount, issuer, card, refund) in enumerate(rows, start=1)
    ]
    run = build_run(legs, business_date="20261204", switch_id="00010000", members=[ACQ], fees=FEES)
    assert run.balanced
    purchases = sum(a for a, _, _, refund in rows if not refund)
    assert sum(f.totals.purchase_amount for f in run.files.values()) == 2 * purchases  # each on two sides
    assert dataclasses.replace(run.files[ACQ]).totals.details == sum(
        2 if issuer == ACQ else 1 for _, issuer, _, _ in rows
    )
