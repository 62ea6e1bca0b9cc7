"""The short chaos run: ``acqsim up`` under load, front-end and ledger killed -9 once each, then reconciled."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from acqkit.config import AcqsimConfig
from acqsim.chaos import run_chaos
from acqsim.cli import main

#: The short form for every `make test` (the long one is `make chaos`: 60 s, every service).
SHORT_DURATION_S = 8.0
SHORT_RATE_TPS = 10.0


def test_short_chaos_run_is_clean(tmp_path: Path) -> None:
    result = run_chaos(
        AcqsimConfig.default(), tmp_path, duration=SHORT_DURATION_S, rate=SHORT_RATE_TPS, kill=("frontend", "ledger")
    )
    assert result.kills == ["frontend", "ledger"]
    assert set(result.restart_s) == {"frontend", "ledger"}
    assert result.sent > 0 and result.approved > 0
    assert result.debited == result.approved_amount, "every approved purchase debited exactly once"
    assert result.reconcile is not None and result.reconcile.clean, result.reconcile
    assert result.clean and result.problems == []


def test_cli_refuses_unknown_services(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chaos", "--kill", "hsm,printer"]) == 2
    assert "--kill from hsm,ledger,frontend,nac" in capsys.readouterr().err


def test_result_json_names_the_verdict(tmp_path: Path) -> None:
    from acqsim.chaos import ChaosResult

    result = ChaosResult(sent=3, approved=2, unanswered=1, problems=["card accounts debited 1, approved 2"])
    assert json.loads(json.dumps(result.to_json()))["verdict"] == "NOT clean"
