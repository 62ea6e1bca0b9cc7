"""Settlement (cut-over, fees, direct and secondary modes, CSV report) and the ledger's offline CLI tools."""

from __future__ import annotations

import csv
import io
import sqlite3
from pathlib import Path

import pytest

from acqkit.config import AcqsimConfig
from acqsim.cli import main
from core_ledger.aggregator import PayoutPolicy, plan_payout, pool_view
from core_ledger.api import LedgerOp, LedgerRequest
from core_ledger.check import check_store
from core_ledger.engine import LedgerEngine
from core_ledger.model import CLEARING_ACCOUNT, FEE_ACCOUNT
from core_ledger.pgembed import EmbeddedPostgres
from core_ledger.seed import MerchantSeed, add_merchants, merchant_account_id
from core_ledger.settlement import fee_for, plan_settlement, report_csv
from core_ledger.setup import open_store, seed_store
from tests.core_ledger.conftest import StoreFactory
from tests.core_ledger.helpers import GOOD, MID, NOW, OTHER, engine, request, seeded_state

SUB_MID = "898100000000777"


def _with_sub_merchant() -> LedgerEngine:
    state = seeded_state()
    add_merchants(
        state, [MerchantSeed(merchant_id=SUB_MID, name="SUB", settlement="secondary", aggregator="AGG", fee_bp=60)]
    )
    return engine(state)


def _run(eng: LedgerEngine, req: LedgerRequest) -> None:
    decision = eng.decide(req)
    eng.commit(decision)


def _at(req: LedgerRequest, merchant_id: str) -> LedgerRequest:
    fields = {f: getattr(req, f) for f in req.__slots__}
    fields["merchant_id"] = merchant_id
    return LedgerRequest(**fields)


@pytest.mark.parametrize(
    ("net", "bp", "fee"), [(10_000, 38, 38), (150, 38, 1), (130, 38, 0), (-10_000, 60, -60), (0, 50, 0)]
)
def test_fee_rounds_half_up_with_the_sign_of_net(net: int, bp: int, fee: int) -> None:
    assert fee_for(net, bp) == fee


def test_settlement_nets_fees_and_pays_direct_and_secondary() -> None:
    eng = _with_sub_merchant()
    state = eng.state
    sale = request(LedgerOp.PURCHASE, GOOD, 10_000)  # direct merchant MID, 50 bp
    _run(eng, sale)
    _run(eng, request(LedgerOp.REFUND, GOOD, 2_000, original=sale))
    voided = request(LedgerOp.PURCHASE, GOOD, 3_000)
    _run(eng, voided)
    _run(eng, request(LedgerOp.VOID, GOOD, 3_000, original=voided))
    reversed_sale = request(LedgerOp.PURCHASE, OTHER, 4_000)
    _run(eng, reversed_sale)
    _run(eng, request(LedgerOp.REVERSAL, OTHER, 4_000, original=reversed_sale))
    _run(eng, _at(request(LedgerOp.PURCHASE, OTHER, 20_000), SUB_MID))

    run = plan_settlement(state, "20261124")
    lines = {line.merchant.merchant_id: line for line in run.lines}
    direct, secondary = lines[MID], lines[SUB_MID]
    assert (direct.net, direct.fee, direct.payout) == (8_000, 40, 7_960)
    assert (direct.debit_count, direct.credit_count) == (3, 3)
    assert direct.paid_to == merchant_account_id(MID)
    assert (secondary.net, secondary.fee, secondary.payout) == (20_000, 120, 19_880)
    assert secondary.paid_to.startswith("AGG-")
    for _records, effects in run.postings:
        assert sum(e.amount for e in effects if hasattr(e, "amount")) == 0
    for records, effects in run.postings:
        for txn in records:
            state.txns[txn.key] = txn
        state.apply(effects)
    assert state.accounts[CLEARING_ACCOUNT].balance == 0  # everything cleared
    assert state.accounts[FEE_ACCOUNT].balance == 160
    assert state.accounts[merchant_account_id(MID)].balance == 7_960
    # 二清: the day sits in the aggregator's pool; the sub-merchant has nothing yet
    assert state.accounts[merchant_account_id(SUB_MID)].balance == 0
    assert state.accounts[secondary.paid_to].balance == 19_880
    policy = PayoutPolicy(delay_days=1, fee_bp=30)
    view = pool_view(state, secondary.paid_to, policy)
    assert (view.balance, view.owed, view.aggregator_own) == (19_880, 19_820, 60)  # 0.30 % of 198.80 = 59.64 → 60
    assert plan_payout(state, secondary.paid_to, "20261124", policy) == []  # due the day after
    payout = plan_payout(state, secondary.paid_to, "20261125", policy)
    for records, effects in payout:
        for txn in records:
            state.txns[txn.key] = txn
        state.apply(effects)
    assert state.accounts[merchant_account_id(SUB_MID)].balance == 19_820
    assert state.accounts[secondary.paid_to].balance == 60  # the aggregator's fee
    assert plan_payout(state, secondary.paid_to, "20261130", policy) == []  # paid once
    assert pool_view(state, secondary.paid_to, policy).owed == 0

    rows = list(csv.DictReader(io.StringIO(report_csv(run))))
    assert [(r["merchant_id"], r["mode"], r["net_amount"], r["fee_amount"], r["payout_amount"]) for r in rows] == [
        (MID, "direct", "8000", "40", "7960"),
        (SUB_MID, "secondary", "20000", "120", "19880"),
    ]


def test_settlement_runs_twice_and_picks_up_late_arrivals(store_factory: StoreFactory) -> None:
    store = store_factory()()
    state = seeded_state()
    store.save_static(state)
    store.commit([((t,), t.effects) for t in state.txns.values()])
    eng = LedgerEngine(store.load(), clock=lambda: NOW)

    def post(req: LedgerRequest) -> None:
        decision = eng.decide(req)
        eng.commit(decision)
        store.commit([(decision.records, decision.effects)])

    post(request(LedgerOp.PURCHASE, GOOD, 1_000))
    first = plan_settlement(store.load(), "20261124")
    store.commit(first.postings, settled=first.settled_keys)
    post(request(LedgerOp.PURCHASE, GOOD, 500))  # arrives after the cut-over, dated the closed day
    assert plan_settlement(store.load(), "20261123").lines == ()  # an earlier date: not due
    second = plan_settlement(store.load(), "20261124")
    assert (second.run, [line.net for line in second.lines]) == (2, [500])
    store.commit(second.postings, settled=second.settled_keys)
    after = store.load()
    assert after.accounts[CLEARING_ACCOUNT].balance == 0
    assert plan_settlement(after, "20261124").lines == ()
    assert check_store(store) == []
    store.close()


def _seeded_db(tmp_path: Path) -> tuple[str, AcqsimConfig]:
    config = AcqsimConfig.default(data_dir=tmp_path)
    db = str(tmp_path / "cli.sqlite3")
    store = open_store(db)
    seed_store(store, store.load(), config)
    eng = LedgerEngine(store.load(), clock=lambda: NOW)
    for plain in (request(LedgerOp.PURCHASE, GOOD, 1_234), request(LedgerOp.PREAUTH, GOOD, 500)):
        decision = eng.decide(_at(plain, config.merchants[0].merchant_id))
        eng.commit(decision)
        store.commit([(decision.records, decision.effects)])
    store.close()
    return db, config


def test_cli_balance_statement_settle_and_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db, config = _seeded_db(tmp_path)
    assert main(["ledger", "balance", GOOD, "--db", db]) == 0
    out = capsys.readouterr().out
    assert "balance 499,987.66  held 5.00  available 499,982.66" in out
    assert GOOD not in out  # the PAN is masked
    assert main(["ledger", "statement", GOOD, "--db", db]) == 0
    out = capsys.readouterr().out
    assert "-12.34" in out and "purchase" in out and GOOD not in out

    report = tmp_path / "clearing-20261124.csv"
    assert main(["ledger", "settle", "--db", db, "--date", "20261124", "--out", str(report)]) == 0
    rows = list(csv.DictReader(io.StringIO(report.read_text(encoding="utf-8"))))
    fee_bp = config.merchants[0].fee_bp
    assert [(r["merchant_id"], r["net_amount"], r["fee_amount"]) for r in rows] == [
        (config.merchants[0].merchant_id, "1234", str(fee_for(1_234, fee_bp)))
    ]
    assert main(["ledger", "check", "--db", db]) == 0
    assert "ledger check: ok" in capsys.readouterr().out
    assert main(["ledger", "settle", "--db", db, "--date", "2026-11-24", "--out", str(report)]) == 2


def test_cli_check_reports_tampering(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db, _ = _seeded_db(tmp_path)
    with sqlite3.connect(db) as raw:
        raw.execute("UPDATE accounts SET balance = balance + 1 WHERE account_id = ?", (CLEARING_ACCOUNT,))
        raw.execute("DELETE FROM holds")
    capsys.readouterr()
    assert main(["ledger", "check", "--db", db]) == 1
    out = capsys.readouterr().out
    assert f"account {CLEARING_ACCOUNT}: balance" in out
    assert "is held but has no open hold" in out
    assert GOOD not in out


def test_cli_refuses_a_negative_completion_tolerance(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "t.sqlite3")
    assert main(["ledger", "serve", "--db", db, "--port", "0", "--completion-tolerance", "-1"]) == 2
    assert "--completion-tolerance" in capsys.readouterr().err


@pytest.mark.postgres
def test_cli_tools_on_a_postgresql_url(
    postgres_server: EmbeddedPostgres, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = postgres_server.fresh_database()
    config = AcqsimConfig.default(data_dir=tmp_path)
    store = open_store(url)
    seed_store(store, store.load(), config)
    eng = LedgerEngine(store.load(), clock=lambda: NOW)
    decision = eng.decide(_at(request(LedgerOp.PURCHASE, GOOD, 4_321), config.merchants[0].merchant_id))
    eng.commit(decision)
    store.commit([(decision.records, decision.effects)])
    store.close()

    assert main(["ledger", "statement", GOOD, "--db", url]) == 0
    assert "-43.21" in capsys.readouterr().out
    report = tmp_path / "pg.csv"
    assert main(["ledger", "settle", "--db", url, "--date", "20261124", "--out", str(report)]) == 0
    assert "4321" in report.read_text(encoding="utf-8")
    assert main(["ledger", "check", "--db", url]) == 0
    assert main(["ledger", "check", "--db", url.rsplit("/", 1)[0] + "/no_such_database"]) == 2


def test_looking_into_a_missing_store_is_an_error_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no" / "ledger.sqlite3"
    for action in (["check"], ["balance", "6200001000000003"], ["statement", "6200001000000003"]):
        assert main(["ledger", *action, "--db", str(missing)]) == 2
        assert f"no ledger store at {missing}" in capsys.readouterr().err
    assert not missing.exists() and not missing.parent.exists()
