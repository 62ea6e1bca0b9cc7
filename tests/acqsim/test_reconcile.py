"""``acqsim ledger reconcile`` over real stores written by a real pipeline run."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import anyio
import pytest

from acqkit.config import AcqsimConfig
from acqsim.cli import main
from acqsim.pipeline import running_pipeline
from acqsim.reconcile import ReconcileError, reconcile_stores
from terminal.pos import PosTerminal


def stores(config: AcqsimConfig) -> tuple[Path, str]:
    return Path(config.store_path(config.frontend.db)), config.store_path(config.ledger.db)


async def business(config: AcqsimConfig) -> None:
    """Approvals, a decline, a PIN failure, a pre-authorisation (open hold) and a reversed purchase."""
    good, low = config.card("6200001000000003"), config.card("6200004000000049")
    async with running_pipeline(config) as pipeline:
        async with PosTerminal(config, "10000001", nac=pipeline.nac) as pos:
            for amount in (100, 200):
                buy = await pos.financial("purchase", good, amount=amount, pin=good.pin)
                assert buy is not None and buy.approved
            declined = await pos.financial("purchase", low, amount=5000, pin=low.pin)
            assert declined is not None and not declined.approved
            wrong_pin = await pos.financial("purchase", good, amount=100, pin="999999")
            assert wrong_pin is not None and wrong_pin.response_code == "55"
            held = await pos.financial("preauth", good, amount=700, pin=good.pin)
            assert held is not None and held.approved
            frame = pos.session.financial("purchase", good, amount=300, pin=good.pin)
            answer = await pos._send(frame)  # sent, but the terminal "loses" the answer: its reversal is due
            assert answer is not None
            reversed_ = await pos.send_pending_reversal()
            assert reversed_ is not None and reversed_.approved
        pipeline.cancel.cancel()


@pytest.fixture
def config(tmp_path: Path) -> AcqsimConfig:
    config = AcqsimConfig.default(data_dir=tmp_path)
    anyio.run(business, config)
    return config


def test_a_real_business_day_reconciles_clean(config: AcqsimConfig) -> None:
    journal, ledger = stores(config)
    result = reconcile_stores(journal, ledger)
    assert result.clean, result.differences
    assert result.journal_rows >= 6 and result.matched == result.journal_rows


def test_approval_without_posting_and_posting_without_row_are_reported(config: AcqsimConfig) -> None:
    journal, ledger = stores(config)
    with sqlite3.connect(journal) as db:
        (rrn,) = db.execute("SELECT rrn FROM txns WHERE kind = 'purchase' AND status = 'approved' LIMIT 1").fetchone()
        (declined,) = db.execute("SELECT rrn FROM txns WHERE status = 'declined' LIMIT 1").fetchone()
        db.execute("DELETE FROM txns WHERE rrn = ?", (rrn,))
        db.execute("UPDATE txns SET status = 'approved' WHERE rrn = ?", (declined,))
    result = reconcile_stores(journal, ledger)
    problems = {(d.rrn, d.problem) for d in result.differences}
    assert (rrn, "posted at the ledger, no journal row") in problems
    assert (declined, "approved in the journal, no posting at the ledger") in problems


def test_reversed_row_still_posted_and_unbacked_hold_are_reported(config: AcqsimConfig) -> None:
    journal, ledger = stores(config)
    with sqlite3.connect(journal) as db:
        (rrn,) = db.execute("SELECT rrn FROM txns WHERE kind = 'purchase' AND status = 'approved' LIMIT 1").fetchone()
        (hold,) = db.execute("SELECT rrn FROM txns WHERE kind = 'preauth'").fetchone()
        db.execute("UPDATE txns SET status = 'reversed' WHERE rrn IN (?, ?)", (rrn, hold))
    result = reconcile_stores(journal, ledger)
    problems = {(d.rrn, d.problem) for d in result.differences}
    assert (rrn, "reversed in the journal, still posted at the ledger") in problems
    assert (hold, "open hold not backed by an approved pre-authorisation in the journal") in problems


def test_cli_exit_codes_and_json(config: AcqsimConfig, capsys: pytest.CaptureFixture[str]) -> None:
    journal, ledger = stores(config)
    assert main(["ledger", "reconcile", "--journal", str(journal), "--ledger", ledger, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["clean"] is True
    with sqlite3.connect(journal) as db:
        db.execute("UPDATE txns SET status = 'approved' WHERE status = 'declined'")
    assert main(["ledger", "reconcile", "--journal", str(journal), "--ledger", ledger]) == 1
    assert "DIFFERS rrn=" in capsys.readouterr().out


def test_refuses_missing_stores(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ReconcileError, match="no front-end journal"):
        reconcile_stores(tmp_path / "nope.db", str(tmp_path / "ledger.db"))
    assert main(["ledger", "reconcile", "--journal", str(tmp_path / "j.db"), "--ledger", "x.db"]) == 2
    assert "no front-end journal" in capsys.readouterr().err
    assert not (tmp_path / "j.db").exists()
    assert main(["ledger", "reconcile", "--journal", str(tmp_path / "j.db")]) == 2
