"""The demo's whole business day, and what its traces may never contain."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from acqsim.cli import main
from tests.secrets_scan import secrets_in


def test_demo_day_over_real_processes_leaves_no_secret_on_disk(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """#15: after a day over real processes (sign-on, purchases with PINs, void, refund, pre-authorisation,
    settlement) and a pcap export, no file the run wrote — traces, logs, journal, terminal state, receipts,
    capture, keys — nor anything it printed holds a test PAN, PIN, clear PIN block or clear key.

    The one demo day of ``make test``: over real processes with mutual TLS on every service hop, then read back
    with ``acqsim trace``; the in-process pipeline is tests/integration/test_pipeline.py's."""
    assert main(["demo", "--processes", "--tls", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "services running as separate processes" in out and "19 of 19 steps ended as expected" in out
    assert "the smart-POS day needs the in-process wallet host" in out  # tests/integration/test_demo_smartpos.py
    assert "terminal ← answer" in out and "front-end → HSM DC" in out and "front-end → ledger 0200" in out
    # issue #18: where each cryptogram is checked shows in the timelines
    assert "front-end ← HSM KQ (ARQC verified, ARPC generated)" in out
    assert "front-end ← HSM M2 (track decrypted)" in out and "front-end → HSM GQ" in out
    assert "front-end ← HSM M2 (track decrypted, TDK)" in out  # the 004 terminal's tracks under its TDK
    assert "ledger ← front-end 0200" in out  # the ledger process traced its own hop
    assert (tmp_path / "tls" / "ca.pem").exists()
    for service in ("hsm", "ledger", "frontend", "nac"):  # every service started with TLS between services
        assert "mutual TLS between services" in (tmp_path / "logs" / f"{service}.log").read_text()
    traces = "".join(p.read_text() for p in (tmp_path / "traces").glob("*.jsonl"))
    assert traces.count("\n") > 50
    assert re.search(r'"52":"(?!\[hidden\])', traces) is None  # a PIN block never appears: field 52 is hidden
    trace_dir = str(tmp_path / "traces")
    assert main(["trace", "show", "--last", "--trace-dir", trace_dir]) == 0
    shown = capsys.readouterr().out
    assert "NAC ← terminal" in shown and "front-end → HSM M8" in shown
    assert main(["trace", "show", "T10000001-000002", "--trace-dir", trace_dir]) == 0
    shown += capsys.readouterr().out
    assert "front-end → ledger 0200" in shown
    assert main(["trace", "show", "T10000001-999999", "--trace-dir", trace_dir]) == 1
    assert main(["trace", "export", "--pcap", str(tmp_path / "day.pcap"), "--trace-dir", trace_dir]) == 0
    hits = secrets_in(tmp_path, out + shown + capsys.readouterr().out)
    assert hits == [], hits
    assert secrets_in(tmp_path, "planted: 6200001000000003") == ["<printed>: PAN 620000******0003"]  # it sees
