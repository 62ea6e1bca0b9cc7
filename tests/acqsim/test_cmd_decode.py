"""``acqsim decode`` through ``main(argv)``, against a frame built by hand from PROTOCOL.md alone."""

from __future__ import annotations

import io
import json

import pytest

from acqsim.cli import main

# Built byte by byte from PROTOCOL.md §1 (not by our encoder): TPDU 60 0003 0000, header 61 31 00 00 00 00,
# MTI 0200, bitmap with fields 2, 3, 4, 11, 22, 25, 41, 42, 49, 60.
HAND_FRAME = (
    "6000030000"
    + "613100000000"
    + "0200"
    + "7020048000C08010"  # bitmap: 2 3 4 11 | 22 | 25 | 41 42 | 49 | 60
    + "16"
    + "6200001000000003"  # 2: LLVAR BCD
    + "000000"  # 3
    + "000000012800"  # 4
    + "000007"  # 11
    + "0210"  # 22: 021 padded right with 0
    + "00"  # 25
    + "3130303030303031"  # 41: "10000001"
    + "383938313030303030303030303031"  # 42: "898100000000001"
    + "313536"  # 49: "156"
    + "0011"
    + "220000010000"  # 60: 22 000001 000, padded right with 0
)


def test_hand_built_frame_decodes_to_json(capsys: pytest.CaptureFixture[str]) -> None:
    length = f"{len(HAND_FRAME) // 2:04X}"
    assert main(["decode", "--json", length + HAND_FRAME]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["tpdu"] == {"id": "60", "dst": "0003", "src": "0000"}
    assert out["mti"] == "0200" and out["header"]["app_type"] == "61"
    assert out["fields"] == {
        "2": "620000******0003",
        "3": "000000",
        "4": "000000012800",
        "11": "000007",
        "22": "021",
        "25": "00",
        "41": "10000001",
        "42": "898100000000001",
        "49": "156",
        "60": "22000001000",
    }


def test_unmask_and_stdin_with_spaces(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    spaced = " ".join(HAND_FRAME[i : i + 8] for i in range(0, len(HAND_FRAME), 8))
    monkeypatch.setattr("sys.stdin", io.StringIO(spaced + "\n"))
    assert main(["decode", "-", "--unmask"]) == 0
    out = capsys.readouterr().out
    assert "6200001000000003" in out and "Primary Account Number" in out and "n..19 LLVAR BCD" in out


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("60000300zz", "not hex"),
        ("6000030", "odd number"),
        ("6100030000613100000000", "TPDU ID"),
        (HAND_FRAME[:-6], "field 60"),
    ],
)
def test_bad_input_is_one_line_with_where(text: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["decode", text]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and message in err and "offset" in err


def test_host_link(capsys: pytest.CaptureFixture[str]) -> None:
    from wire.codec import encode_host

    raw = encode_host({"t": "0200", "2": "6200001000000003", "11": "000001", "39": "00"})
    assert main(["decode", "--link", "host", "--json", raw.hex()]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["fields"]["2"] == "620000******0003" and out["fields"]["39"] == "00"
