"""``acqsim ledger … --db postgresql://`` with the database server down exits 3 (unreachable), not 2 (usage):
docs/cli.md's exit codes. Connection refused is immediate, so these run in-process without a server."""

from __future__ import annotations

from pathlib import Path

import pytest

from acqkit.exitcodes import EXIT_UNREACHABLE, EXIT_USAGE
from acqsim.cli import main
from frontend.journal import Journal
from tests.cli_helpers import LOOPBACK, closed_port

GOOD = "6200001000000003"


@pytest.fixture
def down_url() -> str:
    return f"postgresql://acqsim@{LOOPBACK}:{closed_port()}/acqsim"


@pytest.mark.parametrize("action", [["balance", GOOD], ["statement", GOOD], ["check"], ["serve", "--port", "0"]])
def test_ledger_commands_exit_3_when_the_database_server_is_down(
    action: list[str], down_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ledger", *action, "--db", down_url]) == EXIT_UNREACHABLE
    err = capsys.readouterr().err
    assert "cannot open ledger store" in err and "OperationalError" in err


def test_reconcile_exits_3_when_the_ledger_server_is_down(
    tmp_path: Path, down_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = tmp_path / "frontend.sqlite3"
    Journal(journal).close()
    assert main(["ledger", "reconcile", "--journal", str(journal), "--ledger", down_url]) == EXIT_UNREACHABLE
    assert "cannot reach the ledger store" in capsys.readouterr().err


def test_a_bad_sqlite_path_is_still_a_usage_error(tmp_path: Path) -> None:
    assert main(["ledger", "balance", GOOD, "--db", str(tmp_path / "none.sqlite3")]) == EXIT_USAGE
