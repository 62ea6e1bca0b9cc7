"""The audit log builds each line by hand on the hot path: it must be exactly what json.dumps writes."""

from __future__ import annotations

import json
from pathlib import Path

from hsm_sim.audit import AuditLog, read_audit
from hsm_sim.errors import ErrorCode
from hsm_sim.keys import KeyType
from hsm_sim.processor import Outcome


def test_an_entry_is_the_line_json_dumps_writes_and_reads_back(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit.jsonl")
    outcome = Outcome(
        'D"C', ErrorCode.VERIFICATION_FAILED, ErrorCode.PIN_BLOCK_INVALID, (KeyType.TPK, KeyType.PVK), 'bad "ü"\n'
    )
    audit.record('client "x"', "[::1]:5", outcome)
    audit.record("frontend", "127.0.0.1:9", Outcome("M8", ErrorCode.OK, ErrorCode.OK, (KeyType.TAK,)))
    audit.flush()
    first, second = read_audit(tmp_path / "audit.jsonl")
    assert first["ts"].endswith("Z") and len(first["ts"]) == len("2026-12-04T09:00:00.000Z")
    expected = {
        "ts": first["ts"],
        "client": 'client "x"',
        "peer": "[::1]:5",
        "command": 'D"C',
        "key_types": ["TPK", "PVK"],
        "outcome": "01",
        "true_outcome": "20",
        "reason": 'bad "ü"\n',
    }
    lines = (tmp_path / "audit.jsonl").read_text(encoding="utf-8").splitlines()
    assert lines[0] == json.dumps(expected, separators=(",", ":"))
    assert second == {
        "ts": second["ts"],
        "client": "frontend",
        "peer": "127.0.0.1:9",
        "command": "M8",
        "key_types": ["TAK"],
        "outcome": "00",
    }
