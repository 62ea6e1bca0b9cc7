"""``acqsim send`` against ``acqsim up`` (the four services as processes): a composed purchase is approved and
its answer's MAC verifies; edits reach the wire; a wrong raw MAC is answered A0; a traced request is sent
again from the trace; bad edits are refused before anything is sent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from acqsim.cli import main
from acqsim.processes import running_processes
from terminal.composer import ComposerError, Edits


def _send(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = main(["send", *args, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


def test_send_against_acqsim_up(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with running_processes(data_dir=tmp_path) as nac:
        common = ("--data-dir", str(tmp_path), "--nac", str(nac), "--terminal", "10000001")

        code, plain = _send(capsys, *common, "--amount", "12.34", "purchase")
        assert code == 0
        assert plain["response_code"] == "00" and plain["answer_mac"] == "verifies"
        assert plain["request"]["fields"]["4"] == "000000001234"
        assert plain["request"]["fields"]["2"] == "620000******0003"  # masked in what is printed
        stan = plain["request"]["fields"]["11"]

        code, edited = _send(capsys, *common, "--set", "4=000000001000", "--set", "22=022", "purchase")
        assert code == 0 and edited["response_code"] == "00"
        assert edited["request"]["fields"]["4"] == "000000001000"
        assert edited["request"]["fields"]["22"] == "022"

        # read by chip, says 22, but no field 55: the front-end refuses it as a format error
        code, chip_without_55 = _send(capsys, *common, "--set", "22=051", "purchase")
        assert code == 1 and chip_without_55["response_code"] == "30"

        code, bad_mac = _send(capsys, *common, "--raw-mac", "0000000000000000", "purchase")
        assert code == 1
        assert bad_mac["request"]["fields"]["64"] == "0000000000000000"
        assert bad_mac["response_code"] == "A0" and bad_mac["answer_mac"] == "verifies"
        assert bad_mac["sign_on_again"] is True

        code, no_pin_block = _send(capsys, *common, "--unset", "52", "purchase")
        assert code == 1 and "52" not in no_pin_block["request"]["fields"]
        assert no_pin_block["response_code"] != "00"

        code, again = _send(capsys, *common, "--from-trace", f"T10000001-{stan}", "--set", "4=000000000500")
        assert code == 0 and again["response_code"] == "00"
        assert again["request"]["fields"]["11"] != stan  # a fresh STAN
        assert again["request"]["fields"]["4"] == "000000000500"

        assert main(["send", *common, "--set", "99=1", "purchase"]) == 2
        assert "'99' is not a field" in capsys.readouterr().err
        assert main(["send", *common, "--set", "4=12ab", "purchase"]) == 2
        assert "field 4:" in capsys.readouterr().err


def test_edits_are_checked_when_parsed() -> None:
    edits = Edits.parse(["4=000000000100", "MTI=0100"], ["52"], "00" * 8)
    assert edits.set == {"4": "000000000100", "t": "0100"}
    assert edits.unset == frozenset({"52"}) and edits.raw_mac == bytes(8)
    with pytest.raises(ComposerError, match="FIELD=VALUE"):
        Edits.parse(["4"])
    with pytest.raises(ComposerError, match="8 bytes"):
        Edits.parse(raw_mac="00")
    with pytest.raises(ComposerError, match="not hex"):
        Edits.parse(raw_mac="zz" * 8)
    with pytest.raises(ComposerError, match="not a field"):
        Edits.parse(removals=["p"])
