"""Scripted answers and faults at every hop (NAC, front-end, HSM, ledger), as an engineer uses them:
``acqsim up --rules FILE`` and ``acqsim send``. The rules file is rewritten while the services run (hot reload)
and every hit is traced."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from acqsim.cli import main
from acqsim.processes import running_processes
from wire.trace import read_trace

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


AT_FRONTEND = """
[[rule]]
name = "issuer says no"
at = "ledger"
processing_code = "000000"
amount_min = 20000
amount_max = 30000
action = "answer"
code = "05"

[[rule]]
name = "low limit"
at = "frontend"
mti = "0200"
amount_min = 50000
fields = { "22" = "021" }
action = "answer"
code = "61"

[[rule]]
name = "say it twice"
at = "frontend"
processing_code = "310000"
action = "answer_twice"

[[rule]]
name = "slow preauth"
at = "frontend"
mti = "0100"
action = "delay"
delay_s = 2.0
"""


def test_rules_at_the_nac_and_the_front_end_with_send(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(DECLINE_BIG + AT_FRONTEND)
    data = tmp_path / "data"
    with running_processes(data_dir=data, up_args=("--rules", str(rules))) as nac:
        common = ("--data-dir", str(data), "--nac", str(nac), "--terminal", "10000001")

        # at the NAC: answered there, without a MAC (the NAC holds no key)
        code, big = _send(capsys, *common, "--amount", "1000.00", "purchase")
        assert code == 1
        assert big["response_code"] == "51" and big["answer_mac"] == "absent"
        assert big["answer"]["mti"] == "0210" and big["answer"]["fields"]["4"] == "000000100000"

        # at the front-end: answered there, MACed through the HSM
        code, limited = _send(capsys, *common, "--amount", "600.00", "purchase")
        assert code == 1
        assert limited["response_code"] == "61" and limited["answer_mac"] == "verifies"
        code, other = _send(capsys, *common, "--amount", "600.00", "--set", "22=022", "purchase")
        assert code == 0 and other["response_code"] == "00"  # field 22 differs: no match
        # at the ledger: its answer, carried back by the front-end and MACed as usual; nothing posted
        code, refused = _send(capsys, *common, "--amount", "250.00", "purchase")
        assert code == 1 and refused["response_code"] == "05" and refused["answer_mac"] == "verifies"

        code, twice = _send(capsys, *common, "balance")
        assert code == 0 and twice["response_code"] == "00"  # the terminal reads the first of the two
        code, slow = _send(capsys, *common, "--timeout", "0.5", "preauth")
        assert code == 3 and slow["answered"] is False  # held 2 s: the terminal gave up

        rules.write_text(CORRUPT)  # hot reload: the next message is matched against the new file
        code, mangled = _send(capsys, *common, "--amount", "1.00", "purchase")
        assert code == 1 and mangled["response_code"] == "00" and mangled["answer_mac"] == "fails"
        code, again = _send(capsys, *common, "--amount", "1.00", "purchase")  # times = 1: spent
        assert code == 0 and again["answer_mac"] == "verifies"

        rules.write_text(DROP)
        code, dropped = _send(capsys, *common, "--timeout", "0.5", "balance")
        assert code == 3 and dropped["answered"] is False

    traces = data / "traces"
    nac_records = read_trace(traces / "nac.jsonl")
    nac_notes = [record.get("note") for record in nac_records]
    assert "rule 1 (big purchases declined): answer" in nac_notes
    assert "rule 1 (mangle the MAC): corrupt_mac" in nac_notes
    assert "rule 1 (lose everything): drop" in nac_notes
    fe_notes = [r.get("note") for r in read_trace(traces / "frontend.jsonl")]
    assert "rule 3 (low limit): answer" in fe_notes
    assert "rule 4 (say it twice): answer_twice" in fe_notes
    assert "rule 5 (slow preauth): delay" in fe_notes
    ledger_notes = [r.get("note") for r in read_trace(traces / "ledger.jsonl")]
    assert "rule 2 (issuer says no): answer" in ledger_notes
    balance_answers = [
        r
        for r in nac_records
        if r["direction"] == "in" and r["message"].get("mti") == "0210" and r["message"]["fields"].get("3") == "310000"
    ]
    assert len(balance_answers) == 2  # the front-end answered the balance inquiry twice


def test_a_broken_rules_file_stops_acqsim_up_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rule]]\nat = "nac"\naction = "explode"\n')
    assert main(["up", "--ephemeral-ports", "--data-dir", str(tmp_path), "--rules", str(rules)]) == 2
    assert "rule 1: action must be one of answer" in capsys.readouterr().err


HSM_MAC_FAILS = """
[[rule]]
name = "MAC says no"
at = "hsm"
command = "M8"
client = "anonymous"
action = "answer"
code = "01"
times = 1
"""

HSM_SLOW_PIN = """
[[rule]]
name = "slow PIN check"
at = "hsm"
command = "DC"
action = "delay"
delay_s = 3.0
times = 1
"""

HSM_TWICE = """
[[rule]]
name = "echo"
at = "hsm"
command = "M8"
action = "answer_twice"
times = 1
"""

LEDGER_CLOSES = """
[[rule]]
name = "cut the host link"
at = "ledger"
mti = "0200"
action = "close"
times = 1
"""


def test_rules_at_the_hsm_and_the_ledger_close(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(HSM_MAC_FAILS)
    data = tmp_path / "data"
    with running_processes(data_dir=data, up_args=("--rules", str(rules))) as nac:
        common = ("--data-dir", str(data), "--nac", str(nac), "--terminal", "10000001", "--amount", "1.00")

        # the HSM answers M8 with 01 (MAC does not verify): the front-end answers A0, as to a bad MAC
        code, refused = _send(capsys, *common, "purchase")
        assert code == 1 and refused["response_code"] == "A0"

        # DC held 3 s, past the front-end's HSM timeout (2 s): 96, the PIN never verified, nothing posted
        rules.write_text(HSM_SLOW_PIN)
        code, slow = _send(capsys, *common, "purchase")
        assert code == 1 and slow["response_code"] == "96" and slow["answer_mac"] == "verifies"

        # a duplicate HSM answer is one the client no longer waits for: the purchase goes through
        rules.write_text(HSM_TWICE)
        code, twice = _send(capsys, *common, "purchase")
        assert code == 0 and twice["response_code"] == "00"

        # the ledger closes the host link on the purchase, unposted: the front-end's link sends it once more
        # on a fresh connection (a ledger request is safe to repeat), and it is posted once
        rules.write_text(LEDGER_CLOSES)
        code, cut = _send(capsys, *common, "purchase")
        assert code == 0 and cut["response_code"] == "00"
        code, after = _send(capsys, *common, "purchase")  # times = 1: the next one is posted as usual
        assert code == 0 and after["response_code"] == "00"

    traces = data / "traces"
    hsm_notes = [r.get("note") for r in read_trace(traces / "hsm.jsonl")]
    assert "rule 1 (MAC says no): answer" in hsm_notes
    assert "rule 1 (slow PIN check): delay" in hsm_notes
    assert "rule 1 (echo): answer_twice" in hsm_notes
    ledger_notes = [r.get("note") for r in read_trace(traces / "ledger.jsonl")]
    assert "rule 1 (cut the host link): close" in ledger_notes
    ledger_records = read_trace(traces / "ledger.jsonl")
    rrn = cut["answer"]["fields"]["37"]
    answered = [r for r in ledger_records if r["direction"] == "out" and r["message"]["fields"].get("37") == rrn]
    assert len(answered) == 1  # the closed request was not posted; its resend was, once
