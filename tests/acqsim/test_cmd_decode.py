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


def _ascii(text: str) -> str:
    return text.encode("ascii").hex()


# Every POS field, each written by hand from the PROTOCOL.md §1 table (field number, wire hex, decoded value).
EVERY_FIELD = [
    (2, "17" + "62000060000000061F", "62000060000000061"),  # odd length: F pad
    (3, "000000", "000000"),
    (4, "000000012800", "000000012800"),
    (11, "000123", "000123"),
    (12, "213045", "213045"),
    (13, "1124", "1124"),
    (14, "3012", "3012"),
    (15, "1125", "1125"),
    (22, "0510", "051"),  # padded right with 0
    (23, "0001", "001"),  # padded left with 0
    (25, "00", "00"),
    (26, "06", "06"),
    (32, "08" + "48009999", "48009999"),
    (35, "25" + "62000060000000061D3012201F", "62000060000000061=3012201"),  # = as D, F pad
    (36, "0006" + "996D12", "996=12"),  # 2-byte BCD length
    (37, _ascii("263280000001"), "263280000001"),
    (38, _ascii("A12345"), "A12345"),
    (39, _ascii("00"), "00"),
    (41, _ascii("10000001"), "10000001"),
    (42, _ascii("898100000000001"), "898100000000001"),
    (44, "04" + _ascii("OK 1"), "OK 1"),
    (48, "0005" + "123450", "12345"),  # odd digits padded right with 0
    (49, _ascii("156"), "156"),
    (52, "AB7374D801F4A390", "AB7374D801F4A390"),  # shown only with --unmask
    (53, "2600000000000000", "2600000000000000"),
    (54, "0020" + _ascii("0002156C000000001000"), "0002156C000000001000"),
    (55, "0003" + "9F2701", "9F2701"),  # length counts bytes
    (60, "0011" + "220000010000", "22000001000"),
    (61, "0016" + "0000010001231124", "0000010001231124"),
    (62, "0040" + "1A4D672DCA6CB33501E9D8DA9182FC1F164D70B901E9D8DA9182FC1F1FD1B02B237AF9AE76FE1391", None),
    (63, "0003" + _ascii("CUP"), "CUP"),
    (64, "4336444438374146", "4336444438374146"),
]


def _bitmap(numbers: list[int]) -> str:
    bits = 0
    for number in numbers:
        bits |= 1 << (64 - number)
    return f"{bits:016X}"


def test_every_field_of_a_hand_built_frame_reads_back(capsys: pytest.CaptureFixture[str]) -> None:
    body = "0200" + _bitmap([n for n, _, _ in EVERY_FIELD]) + "".join(h for _, h, _ in EVERY_FIELD)
    payload = "6000030000" + "603100000000" + body
    assert main(["decode", "--json", "--unmask", payload]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["length"] == len(payload) // 2 and out["mti"] == "0200"
    assert out["header"] == {
        "app_type": "60",
        "software_version": "31",
        "terminal_status": 0,
        "processing_request": 0,
        "reserved": "000000",
    }
    expected = {str(n): (value if value is not None else wire[4:]) for n, wire, value in EVERY_FIELD}
    assert out["fields"] == expected
    assert main(["decode", payload]) == 0  # masked text form
    text = capsys.readouterr().out
    assert "AB7374D801F4A390" not in text and "62000060000000061" not in text and "620000*******0061" in text


@pytest.mark.parametrize(
    ("text", "field", "offset"),
    [
        ("", None, 0),
        ("6000030000" + "613100000000" + "0200" + "08" + "00" * 7 + "00", "5", 13),  # field 5 is not POS
        ("6000030000" + "613100000000" + "0200" + "40" + "00" * 7 + "04" + "12AB", "2", 21),  # A, B not BCD
        ("6000030000" + "613100000000" + "0200" + "00" * 8 + "FF", "p", 21),  # bytes after the last field
    ],
)
def test_bad_input_names_field_and_offset(
    text: str, field: str | None, offset: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["decode", text]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert captured.out == "" and "\n" not in err and "Traceback" not in err
    assert f"offset {offset}" in err
    if field is not None:
        assert f"field {field}" in err


def test_offsets_count_the_length_prefix_when_one_is_given(capsys: pytest.CaptureFixture[str]) -> None:
    payload = "6000030000" + "613100000000" + "0200" + "40" + "00" * 7 + "04" + "12AB"
    assert main(["decode", f"{len(payload) // 2:04X}" + payload]) == 2
    assert "offset 23" in capsys.readouterr().err


def test_stdin_that_is_not_text_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stdin = io.TextIOWrapper(io.BytesIO(b"6000\xff\xfe"), encoding="utf-8")
    monkeypatch.setattr("sys.stdin", stdin)
    assert main(["decode", "-"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "acqsim decode: standard input is not text (offset 4)"
