"""The demo's whole business day, and what its traces may never contain."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Final

import pytest

from acqkit.config import TEST_PVK, AcqsimConfig
from acqsim.cli import main
from wire.masking import mask_pan
from wire.paycrypto import build_pin_block


def test_demo_day_passes_and_traces_hold_no_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert main(["demo", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out + caplog.text
    assert "17 of 17 steps ended as expected" in out
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
    assert "services running as separate processes" in out and "17 of 17 steps ended as expected" in out
    assert "ledger ← front-end 0200" in out  # the ledger process traced its own hop
    assert main(["trace", "export", "--pcap", str(tmp_path / "day.pcap"), "--trace-dir", str(tmp_path / "traces")]) == 0
    hits = secrets_in(tmp_path, out)
    assert hits == [], hits
    assert secrets_in(tmp_path, "planted: 6200001000000003") == ["<printed>: PAN 620000******0003"]  # it sees


#: The ledger's store is the card issuer's own book: its accounts are keyed by the card number (the one place
#: a PAN is the data itself, as in an issuer's card database). Everything else a run writes is scanned.
ISSUER_BOOK: Final = re.compile(r"ledger\.sqlite3(-wal|-shm|-journal)?$")


def _needles() -> dict[str, list[bytes]]:
    """Every TEST secret, in each form it could be written in: PANs (ASCII digits, also inside longer digit runs,
    and packed BCD), clear ISO-0 PIN blocks (hex and bytes), PINs after a 'PIN' label, clear keys (each half, hex
    in either case and raw bytes)."""
    config = AcqsimConfig.default()
    needles: dict[str, list[bytes]] = {}
    for card in config.cards:
        name = mask_pan(card.pan)
        bcd = bytes.fromhex(card.pan + ("F" if len(card.pan) % 2 else ""))
        needles[f"PAN {name}"] = [card.pan.encode(), bcd]
        block = build_pin_block(card.pin, card.pan)
        needles[f"clear PIN block of {name}"] = [block, block.hex().encode(), block.hex().upper().encode()]
        needles[f"PIN of {name}"] = [f"PIN {card.pin}".encode(), f'"pin": "{card.pin}"'.encode()]
    keys = [t.tmk for t in config.terminals] + [TEST_PVK]
    for key in keys:
        for half in (key[:16], key[16:]):
            needles[f"key half {half}"] = [half.upper().encode(), half.lower().encode(), bytes.fromhex(half)]
    return needles


def secrets_in(folder: Path, printed: str) -> list[str]:
    """Every (file, secret) found in what a run wrote under ``folder`` and printed, the issuer's book aside."""
    found = []
    needles = _needles()
    sources = [(path, path.read_bytes()) for path in folder.rglob("*") if path.is_file()]
    for path, data in [*sources, (Path("<printed>"), printed.encode())]:
        if ISSUER_BOOK.search(path.name):
            continue
        found += [f"{path}: {name}" for name, forms in needles.items() if any(form in data for form in forms)]
    return found


def test_demo_day_over_real_processes_with_tls_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--processes", "--tls", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "17 of 17 steps ended as expected" in out
    assert (tmp_path / "tls" / "ca.pem").exists()
    for service in ("hsm", "ledger", "frontend", "nac"):  # every service started with TLS between services
        assert "mutual TLS between services" in (tmp_path / "logs" / f"{service}.log").read_text()
