"""The scheme commands end to end: ``acqsim scheme day``, ``acqsim clearing run|show|load``, ``acqsim scenario``."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from acqsim.cli import main
from acqsim.fourparty import ACQUIRER_ID, ISSUER_B_ID


def test_scheme_day_then_clearing_show_and_a_corrupt_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scheme", "day", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "off-us debit purchase with PIN at issuer B" in out and "→ 00" in out and "→ 91" in out
    assert "6230501000000014" not in out  # masked
    assert "sum to zero: True; every ledger balanced: True" in out
    day = dt.datetime.now(dt.UTC).strftime("%Y%m%d")
    path = tmp_path / "clearing" / f"CLR_{ISSUER_B_ID}_{day}.csv"
    assert main(["clearing", "show", str(path), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["totals"]["details"] == 3 and shown["totals"]["purchase_amount"] == 212_345

    corrupt = tmp_path / "corrupt.csv"
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace(",P,", ",Q,")
    corrupt.write_text("\n".join(lines) + "\n")
    assert main(["clearing", "show", str(corrupt)]) == 1
    assert "line 3: kind" in capsys.readouterr().err
    assert (
        main(["clearing", "load", str(corrupt), "--db", str(tmp_path / "x.sqlite3"), "--member-id", ISSUER_B_ID]) == 1
    )
    assert "nothing loaded" in capsys.readouterr().err

    # the journal was cleared by the day: a second run clears nothing, but still writes every member's file
    out_dir = tmp_path / "again"
    journal = tmp_path / "world" / "switch-journal.sqlite3"
    assert main(["clearing", "run", "--journal", str(journal), "--date", day, "--out", str(out_dir)]) == 0
    assert "positions balance: True" in capsys.readouterr().out
    assert (out_dir / f"CLR_{ACQUIRER_ID}_{day}.csv").read_text().splitlines()[-1] == "T,0,0,0,0,0,0,0,0"
    assert main(["clearing", "run", "--journal", str(tmp_path / "none.sqlite3"), "--date", day, "--out", "x"]) == 2


def test_scenario_aggregator_failure_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scenario", "aggregator-failure", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["total_lost"] == 158_564 and report["rows"][-1]["failed"] is True
    assert main(["scenario", "aggregator-failure", "--fail-day", "1"]) == 2
