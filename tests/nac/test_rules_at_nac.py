"""Scripted answers and faults at the NAC, as an engineer uses them: ``acqsim up --rules FILE`` and
``acqsim send``. The rules file is rewritten while the services run (hot reload) and every hit is traced."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from acqsim.cli import main
from acqsim.processes import running_processes

DECLINE_BIG = """
[[rule]]
name = "big purchases declined"
at = "nac"
mti = "0200"
processing_code = "000000"
amount_min = 100000
action = "answer"
code = "51"
"""

CORRUPT = """
[[rule]]
name = "mangle the MAC"
at = "nac"
terminal = "10000001"
action = "corrupt_mac"
times = 1
"""

DROP = """
[[rule]]
name = "lose everything"
at = "nac"
action = "drop"
"""


def _send(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = main(["send", *args, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


def test_rules_at_the_nac_with_send(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(DECLINE_BIG)
    data = tmp_path / "data"
    with running_processes(data_dir=data, up_args=("--rules", str(rules))) as nac:
        common = ("--data-dir", str(data), "--nac", str(nac), "--terminal", "10000001")

        code, big = _send(capsys, *common, "--amount", "1000.00", "purchase")
        assert code == 1
        assert big["response_code"] == "51" and big["answer_mac"] == "absent"  # the NAC holds no MAC key
        assert big["answer"]["mti"] == "0210" and big["answer"]["fields"]["4"] == "000000100000"

        code, small = _send(capsys, *common, "--amount", "1.00", "purchase")
        assert code == 0 and small["response_code"] == "00" and small["answer_mac"] == "verifies"

        rules.write_text(CORRUPT)  # hot reload: the next message is matched against the new file
        code, mangled = _send(capsys, *common, "--amount", "1.00", "purchase")
        assert code == 1 and mangled["response_code"] == "00" and mangled["answer_mac"] == "fails"
        code, again = _send(capsys, *common, "--amount", "1.00", "purchase")  # times = 1: spent
        assert code == 0 and again["answer_mac"] == "verifies"

        rules.write_text(DROP)
        code, dropped = _send(capsys, *common, "--timeout", "0.5", "balance")
        assert code == 3 and dropped["answered"] is False

    notes = [json.loads(line).get("note") for line in (data / "traces" / "nac.jsonl").read_text().splitlines()]
    assert "rule 1 (big purchases declined): answer" in notes
    assert "rule 1 (mangle the MAC): corrupt_mac" in notes
    assert "rule 1 (lose everything): drop" in notes


def test_a_broken_rules_file_stops_acqsim_up_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rule]]\nat = "nac"\naction = "explode"\n')
    assert main(["up", "--ephemeral-ports", "--data-dir", str(tmp_path), "--rules", str(rules)]) == 2
    assert "rule 1: action must be one of answer" in capsys.readouterr().err
