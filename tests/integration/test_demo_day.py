"""The demo's whole business day, and what its traces may never contain."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

import pytest

from acqkit.config import TEST_PVK, AcqsimConfig
from acqsim.cli import main
from wire.masking import mask_pan
from wire.paycrypto import build_pin_block


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
    assert "services running as separate processes" in out and "13 of 13 steps ended as expected" in out
    assert "terminal ← answer" in out and "front-end → HSM DC" in out and "front-end → ledger 0200" in out
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
