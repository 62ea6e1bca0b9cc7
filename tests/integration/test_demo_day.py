"""The demo's whole business day, and what its traces may never contain."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from acqsim.cli import main
from tests.secrets_scan import secrets_in
from wire.trace import read_trace


def test_demo_day_over_real_processes_leaves_no_secret_on_disk(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """#15: after a day over real processes (sign-on, purchases with PINs, void, refund, pre-authorisation,
    settlement; the smart-POS day's QR payments and merchant apps) and a pcap export, no file the run wrote —
    traces, logs, journal, terminal state, receipts, capture, keys, the wallet's and the platform's stores — nor
    anything it printed holds a test PAN, PIN, clear PIN block or clear key.

    The one demo day of ``make test``: over real processes with mutual TLS on every service hop, then read back
    with ``acqsim trace``; the in-process pipeline is tests/integration/test_pipeline.py's."""
    assert main(["demo", "--processes", "--tls", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "services running as separate processes" in out and "21 of 21 steps ended as expected" in out
    # issue #19: the demo's acqsim up runs the switch and issuer B too; an off-us PIN purchase crosses them (each
    # hop timed), then issuer B is killed -9 and the switch stands in
    assert "front-end → switch 0200" in out and "issuer ← switch 0200" in out and "switch → front-end (39 = 00)" in out
    assert re.search(r"killed -9: purchase 80\.00 stood in .*: 00 approved \(RRN \d+, auth S\d+\)", out), out[-3000:]
    # issue #20: the smart-POS day over the wallet host and the merchant platform as processes of acqsim up
    smart = re.search(r"smart-POS day: (\d+) of (\d+) steps ended as expected", out)
    assert smart is not None and smart[1] == smart[2], out[-3000:]
    assert "merchant platform 127.0.0.1:" in out and "QR" in out
    assert "terminal ← answer" in out and "front-end → HSM DC" in out and "front-end → ledger 0200" in out
    # issue #18: where each cryptogram is checked shows in the timelines
    assert "front-end ← HSM KQ (ARQC verified, ARPC generated)" in out
    assert "front-end ← HSM M2 (track decrypted)" in out and "front-end → HSM GQ" in out
    assert "front-end ← HSM M2 (track decrypted, TDK)" in out  # the 004 terminal's tracks under its TDK
    assert "ledger ← front-end 0200" in out  # the ledger process traced its own hop
    assert (tmp_path / "tls" / "ca.pem").exists()
    every = ("hsm", "ledger", "wallet", "frontend", "nac", "merchant", "scheme", "issuer-bank-b")
    for service in every:  # every hop is mutual TLS, the switch link's legs too
        assert "mutual TLS between services" in (tmp_path / "logs" / f"{service}.log").read_text()
    records = [r for p in (tmp_path / "traces").glob("*.jsonl") for r in read_trace(p)]
    assert len(records) > 50
    shown_52 = {r["message"].get("fields", {}).get("52") for r in records} - {None}
    assert shown_52 == {"[hidden]"}  # a PIN block never appears: field 52 is hidden
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
