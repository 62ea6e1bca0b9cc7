"""End of day across the four parties: the switch's clearing files from its journal, each member's ledger
loading its file (fees, positions, reconciliation, the books balanced), and a corrupt file loading nothing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from acqsim.fourparty import (
    ACQUIRER_ID,
    CARD_C,
    CREDIT_B,
    DEBIT_B,
    ISSUER_B_ID,
    ISSUER_C_ID,
    MERCHANT_ID,
    SWITCH_ID,
    running_world,
)
from core_ledger.api import LedgerOp
from core_ledger.check import check_store
from core_ledger.clearing import (
    INTERCHANGE_ACCOUNT,
    SCHEME_SETTLEMENT_ACCOUNT,
    SUSPENSE_ACCOUNT,
    ClearingLoadError,
    load_clearing_file,
)
from core_ledger.model import CLEARING_ACCOUNT
from core_ledger.seed import MerchantSeed, merchant_account_id
from core_ledger.settlement import plan_settlement
from core_ledger.setup import seed
from core_ledger.sqlite_store import SqliteStore
from scheme.clearing import build_run, write_run
from scheme.client import OriginalData
from scheme.fees import FeeTable
from wire.clearingfile import ClearingFileError, parse_clearing_file

pytestmark = pytest.mark.anyio
CLOCK = dt.datetime(2026, 12, 4, 9, 30, tzinfo=dt.UTC)
DAY = "20261204"


async def _a_day_of_traffic(tmp_path: Path) -> list[str]:
    """Approved: debit 123.45, credit 2,000.00 (then refunded 100.00), debit 500.00 (reversed), C 80.00 in
    stand-in; declined: debit 1.00 with a wrong PIN. Returns the RRNs of the cleared authorisations."""
    async with running_world(tmp_path, clock=CLOCK, stand_in_limit=10_000, issuer_timeout=0.5) as world:
        rrns = []
        for card, amount in ((DEBIT_B, 12_345), (CREDIT_B, 200_000), (DEBIT_B, 50_000), (CARD_C, 8_000)):
            block = await world.pin_block(card) if card is not CARD_C else None
            request = world.request(LedgerOp.PURCHASE, card, amount, pin_block=block)
            answer = await world.send(request)
            assert answer.fields["39"] == "00"
            rrns.append(request)
        reversed_sale = rrns.pop(2)
        original = OriginalData(
            mti="0200",
            stan=reversed_sale.stan,
            local_date=reversed_sale.local_date,
            local_time=reversed_sale.local_time,
        )
        answer = await world.send(
            world.request(LedgerOp.REVERSAL, DEBIT_B, 50_000, rrn=reversed_sale.rrn, original=original)
        )
        assert answer.fields["39"] == "00"
        credit = rrns[1]
        refund = world.request(
            LedgerOp.REFUND,
            CREDIT_B,
            10_000,
            original=OriginalData(
                mti="0200", stan=credit.stan, local_date=credit.local_date, local_time=credit.local_time
            ),
        )
        assert (await world.send(refund)).fields["39"] == "00"
        records = world.journal.to_clear(DAY)
        run = build_run(
            records,
            business_date=DAY,
            switch_id=SWITCH_ID,
            members=[ACQUIRER_ID, ISSUER_B_ID, ISSUER_C_ID],
            fees=FeeTable(),
        )
        write_run(run, tmp_path / "clearing")
        world.journal.mark_cleared(run.cleared, f"CLR{DAY}")
        assert world.journal.to_clear(DAY) == []  # cleared once
        assert run.balanced
        (tmp_path / "switch-income").write_text(str(run.switch_income))
        return [r.rrn for r in (*rrns, refund)]


async def test_clearing_totals_fees_positions_and_balanced_books(tmp_path: Path) -> None:
    rrns = await _a_day_of_traffic(tmp_path)
    files = {
        m: (tmp_path / "clearing" / f"CLR_{m}_{DAY}.csv").read_text() for m in (ACQUIRER_ID, ISSUER_B_ID, ISSUER_C_ID)
    }
    acq = parse_clearing_file(files[ACQUIRER_ID])
    assert sorted(r.rrn for r in acq.records) == sorted(rrns)
    totals = acq.totals
    # the sums of the approved transactions, nothing reversed, nothing declined
    assert (totals.purchase_count, totals.purchase_amount, totals.refund_count, totals.refund_amount) == (
        3,
        220_345,
        1,
        10_000,
    )
    # interchange: debit 123.45 → 43 (43.2075), credit 2,000.00 → 900, C 80.00 → 28, refund 100.00 (credit) → 45
    assert totals.interchange == 43 + 900 + 28 + 45
    # acquirer's network halves: 123.45 → 4 (4.012), 2,000.00 → 65, 80.00 → 3 (2.6); refunds none
    assert totals.network_fee == 4 + 65 + 3
    positions = {m: parse_clearing_file(text).totals.net for m, text in files.items()}
    assert sum(positions.values()) + int((tmp_path / "switch-income").read_text()) == 0

    # issuer B loads its file: every line matched to its own authorisations, the books balanced
    store_b = SqliteStore(tmp_path / "issuer-b.sqlite3")
    load_b = load_clearing_file(store_b, files[ISSUER_B_ID], member_id=ISSUER_B_ID)
    assert load_b.reconciliation.clean and len(load_b.reconciliation.matched) == 3
    assert load_b.position == positions[ISSUER_B_ID]
    state_b = store_b.load()
    assert state_b.accounts[SCHEME_SETTLEMENT_ACCOUNT].balance == -positions[ISSUER_B_ID]
    assert state_b.accounts[INTERCHANGE_ACCOUNT].balance == 43 + 900 - 45
    assert state_b.accounts[CLEARING_ACCOUNT].balance == 0  # the day's authorisations all cleared
    assert check_store(store_b) == []
    with pytest.raises(ClearingLoadError, match="loaded before"):
        load_clearing_file(store_b, files[ISSUER_B_ID], member_id=ISSUER_B_ID)
    store_b.close()

    # the acquirer loads its file, then pays its merchant (一清) by the ordinary settlement run
    store_a = SqliteStore(tmp_path / "acquirer.sqlite3")
    seed(store_a, store_a.load(), merchants=[MerchantSeed(merchant_id=MERCHANT_ID, name="TEST COFFEE", fee_bp=38)])
    load_a = load_clearing_file(store_a, files[ACQUIRER_ID], member_id=ACQUIRER_ID)
    assert load_a.position == positions[ACQUIRER_ID]
    settlement = plan_settlement(store_a.load(), DAY)
    store_a.commit(settlement.postings, settled=settlement.settled_keys)
    state_a = store_a.load()
    net = 220_345 - 10_000
    assert state_a.accounts[merchant_account_id(MERCHANT_ID)].balance == net - round(net * 38 / 10_000)
    assert state_a.accounts[CLEARING_ACCOUNT].balance == 0
    assert state_a.accounts[SCHEME_SETTLEMENT_ACCOUNT].balance == -positions[ACQUIRER_ID]
    assert check_store(store_a) == []
    store_a.close()

    # issuer C (down all day) finds the stand-in line without an authorisation of its own: suspense, reported
    store_c = SqliteStore(tmp_path / "issuer-c.sqlite3")
    seed(store_c, store_c.load())
    load_c = load_clearing_file(store_c, files[ISSUER_C_ID], member_id=ISSUER_C_ID)
    assert load_c.reconciliation.unmatched_clearing == (1,)
    assert store_c.load().accounts[SUSPENSE_ACCOUNT].balance == -8_000
    assert check_store(store_c) == []
    store_c.close()


async def test_a_corrupt_clearing_file_names_the_line_and_loads_nothing(tmp_path: Path) -> None:
    await _a_day_of_traffic(tmp_path)
    text = (tmp_path / "clearing" / f"CLR_{ISSUER_B_ID}_{DAY}.csv").read_text()
    lines = text.splitlines()
    lines[2] = lines[2].replace(",156,", ",15X,")
    store = SqliteStore(tmp_path / "issuer-b.sqlite3")
    before = (len(store.entries()), store.load().accounts.keys())
    with pytest.raises(ClearingFileError) as info:
        load_clearing_file(store, "\n".join(lines) + "\n", member_id=ISSUER_B_ID)
    assert info.value.line == 3
    assert (len(store.entries()), store.load().accounts.keys()) == before
    with pytest.raises(ClearingLoadError, match="for member"):
        load_clearing_file(store, text, member_id=ACQUIRER_ID)
    store.close()
