"""The demo's whole business day, and what its traces may never contain."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from acqkit.config import TEST_PVK, AcqsimConfig
from acqsim.cli import main
from tests.secrets_scan import secrets_in


def test_demo_day_passes_and_traces_hold_no_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert main(["demo", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out + caplog.text
    assert "13 of 13 steps ended as expected" in out
    assert "terminal ← answer" in out and "front-end → HSM DC" in out and "front-end → ledger 0200" in out
    config = AcqsimConfig.default(data_dir=tmp_path)
    traces = "".join(p.read_text() for p in (tmp_path / "traces").glob("*.jsonl"))
    assert traces.count("\n") > 50
    assert "acqsim.frontend" in caplog.text  # the services' logs were captured too
    secrets = [card.pan for card in config.cards] + [t.tmk for t in config.terminals] + [TEST_PVK]
    for secret in secrets:
        assert secret not in traces and secret not in out
    assert config.card("6200001000000003").pin not in out  # the PIN the demo enters, in output or logs
    # A PIN block never appears: field 52 is always hidden.
    assert re.search(r'"52":"(?!\[hidden\])', traces) is None


def test_demo_day_over_real_processes_leaves_no_secret_on_disk(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """#15: after a day over real processes (sign-on, purchases with PINs, void, refund, pre-authorisation,
    settlement) and a pcap export, no file the run wrote — traces, logs, journal, terminal state, receipts,
    capture, keys — nor anything it printed holds a test PAN, PIN, clear PIN block or clear key."""
    assert main(["demo", "--processes", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "services running as separate processes" in out and "13 of 13 steps ended as expected" in out
    assert "ledger ← front-end 0200" in out  # the ledger process traced its own hop
    assert main(["trace", "export", "--pcap", str(tmp_path / "day.pcap"), "--trace-dir", str(tmp_path / "traces")]) == 0
    hits = secrets_in(tmp_path, out)
    assert hits == [], hits
    assert secrets_in(tmp_path, "planted: 6200001000000003") == ["<printed>: PAN 620000******0003"]  # it sees


def test_demo_day_over_real_processes_with_tls_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--processes", "--tls", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "13 of 13 steps ended as expected" in out
    assert (tmp_path / "tls" / "ca.pem").exists()
    for service in ("hsm", "ledger", "frontend", "nac"):  # every service started with TLS between services
        assert "mutual TLS between services" in (tmp_path / "logs" / f"{service}.log").read_text()
