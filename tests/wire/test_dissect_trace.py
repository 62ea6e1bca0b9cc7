"""The dissection (text and JSON, masked, PIN block hidden) and the JSON-lines trace writer."""

from __future__ import annotations

import json
import logging
import pathlib

import pytest

from wire.codec import encode_host, encode_pos_body
from wire.dissect import HIDDEN, as_json, as_text, dissect_host, dissect_pos, field_format
from wire.errors import MessageDecodeError
from wire.header import PosHeader
from wire.posframe import BODY_OFFSET, PosFrame
from wire.specs import HOST_SPEC, POS_SPEC
from wire.tpdu import Tpdu
from wire.trace import TraceWriter, correlation_id, describe, read_trace

PAN = "6200001000000003"
TRACK2 = PAN + "=30122011630800000"
PIN_BLOCK = "AB7374D801F4A390"
PURCHASE = {
    "t": "0200",
    "2": PAN,
    "3": "000000",
    "4": "000000012800",
    "11": "000123",
    "22": "021",
    "25": "00",
    "26": "06",
    "35": TRACK2,
    "41": "10000001",
    "42": "898100000000001",
    "49": "156",
    "52": PIN_BLOCK,
    "53": "2600000000000000",
    "60": "22000001000",
    "64": "4336444438374146",
}


def payload(fields: dict[str, str]) -> bytes:
    return PosFrame(tpdu=Tpdu(dst="0003", src="0000"), header=PosHeader(), body=encode_pos_body(fields)).to_bytes()


@pytest.mark.parametrize(
    ("spec", "field", "expected"),
    [
        (POS_SPEC, "2", "n..19 LLVAR BCD"),
        (POS_SPEC, "36", "n..104 LLLVAR BCD"),
        (POS_SPEC, "4", "n12 BCD"),
        (POS_SPEC, "41", "ans8 ASCII"),
        (POS_SPEC, "44", "ans..25 LLVAR ASCII"),
        (POS_SPEC, "52", "b8 binary"),
        (POS_SPEC, "62", "b..512 LLLVAR binary"),
        (HOST_SPEC, "2", "ans..19 LLVAR ASCII"),
    ],
)
def test_field_format(spec: dict[str, dict[str, object]], field: str, expected: str) -> None:
    assert field_format(spec[field]) == expected


def test_pos_dissection_masks_cards_and_hides_the_pin_block() -> None:
    dissection = dissect_pos(payload(PURCHASE))
    shown = as_json(dissection)
    assert shown["tpdu"] == {"id": "60", "dst": "0003", "src": "0000"}
    assert shown["header"]["app_type"] == "61" and shown["mti"] == "0200"
    assert shown["bitmap"] == "702004C020C09811"  # 2 3 4 11 | 22 | 25 26 | 35 | 41 42 | 49 52 53 | 60 64
    assert shown["fields"]["2"] == "620000******0003"
    assert shown["fields"]["35"] == "620000******0003=" + "*" * 17
    assert shown["fields"]["52"] == HIDDEN
    assert shown["fields"]["4"] == "000000012800" and shown["fields"]["22"] == "021"
    text = as_text(dissection)
    everything = text + json.dumps(shown)
    assert PIN_BLOCK not in everything and PAN not in everything and "30122011630800000" not in everything
    assert "n..19 LLVAR BCD" in text and "Primary Account Number" in text and "z..37 LLVAR BCD" in text
    assert "000000012800" in text  # raw hex of field 4 is its BCD digits


def test_unmask_shows_everything_the_encrypted_pin_block_included() -> None:
    """#15.6: --unmask is the engineer's explicit request: cards, and the PIN block as it travels (encrypted)."""
    dissection = dissect_pos(payload(PURCHASE), unmask=True)
    assert dissection["fields"]["2"] == PAN and dissection["fields"]["35"] == TRACK2
    text = as_text(dissection)
    assert PAN in text and PIN_BLOCK in text and dissection["fields"]["52"] == PIN_BLOCK
    masked = dissect_pos(payload(PURCHASE))
    assert masked["fields"]["52"] == HIDDEN and PIN_BLOCK not in as_text(masked)


def test_transfer_target_in_field_48_is_masked() -> None:
    fields = {"t": "0200", "3": "400000", "48": "6200002000000001"}
    assert dissect_pos(payload(fields))["fields"]["48"] == "620000******0001"
    assert dissect_pos(payload({"t": "0200", "3": "000000", "48": "123"}))["fields"]["48"] == "123"


def test_body_errors_count_offsets_from_the_payload_start() -> None:
    whole = payload({"t": "0200", "2": PAN, "4": "000000000100"})
    with pytest.raises(MessageDecodeError) as info:
        dissect_pos(whole[:-2])
    # field 4 starts after MTI (2), bitmap (8) and field 2 (1 + 8)
    assert (info.value.field, info.value.offset) == ("4", BODY_OFFSET + 19)


def test_host_dissection() -> None:
    raw = encode_host({"t": "0210", "2": PAN, "35": TRACK2, "39": "51"})
    shown = as_json(dissect_host(raw))
    assert shown == {
        "length": len(raw),
        "mti": "0210",
        "fields": {"2": "620000******0003", "35": "620000******0003=" + "*" * 17, "39": "51"},
    }
    assert "tpdu" not in shown and "MTI      0210" in as_text(dissect_host(raw))


def test_correlation_id() -> None:
    assert correlation_id("00000001", "000123") == "T00000001-000123"
    assert correlation_id("00000001", "000123", "1124") == "T00000001-000123-1124"


def test_trace_writer_records_masked_json_lines(tmp_path: pathlib.Path) -> None:
    writer = TraceWriter(tmp_path, "frontend")
    writer.record(direction="in", link="pos", peer="127.0.0.1:5000", payload=payload(PURCHASE), correlation_id="c1")
    writer.record(direction="out", link="host", peer="ledger", payload=encode_host({"t": "0200", "2": PAN}))
    writer.record(direction="out", link="hsm", peer="hsm", payload=b"0001CAU0123456789ABCDEF0123456789ABCDEF")
    writer.record(direction="in", link="hsm", peer="hsm", payload=b"0001CB0004" + bytes.fromhex(PIN_BLOCK))
    writer.record(direction="in", link="pos", peer="x", payload=b"\x61garbage", note="bad")
    writer.close()
    writer.record(direction="in", link="pos", peer="x", payload=b"after close: ignored")
    text = (tmp_path / "frontend.jsonl").read_text()
    assert PAN not in text and PIN_BLOCK not in text and "0123456789ABCDEF" not in text
    compact = [json.loads(line) for line in text.splitlines()]
    assert [r["v"] for r in compact] == [2] * 5 and "x" in compact[0] and "m" in compact[4]  # bad: dissected now
    records = read_trace(tmp_path / "frontend.jsonl")
    assert len(records) == 5
    first = records[0]
    assert first.keys() >= {"time", "service", "direction", "link", "peer", "correlation_id", "note", "message"}
    assert first["time"].endswith("+00:00") and len(first["time"].split(".")[1]) == len("123456+00:00")
    assert first["message"]["fields"]["52"] == HIDDEN and first["correlation_id"] == "c1"
    assert records[2]["message"] == {"header": "0001", "code": "CA", "error": None, "length": 39}
    assert records[3]["message"]["code"] == "CB" and records[3]["message"]["error"] == "00"
    assert "TPDU ID" in records[4]["message"]["undecodable"] and records[4]["note"] == "bad"


def test_trace_writer_off_and_unwritable(tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture) -> None:
    off = TraceWriter(None, "nac")
    assert not off.enabled
    off.record(direction="in", link="pos", peer="x", payload=b"")
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with caplog.at_level(logging.WARNING, logger="acqsim.trace"):
        broken = TraceWriter(blocker / "traces", "nac")
    assert not broken.enabled and "trace for nac is off" in caplog.text
    broken.record(direction="in", link="pos", peer="x", payload=b"\x00")


def test_describe_hsm_short_payload() -> None:
    assert describe("hsm", b"0001") == {"header": "0001", "code": "", "error": None, "length": 4}


def test_long_raw_hex_is_cut_in_text_but_whole_in_json() -> None:
    keys = "AB" * 40
    dissection = dissect_pos(payload({"t": "0810", "62": keys}), unmask=True)
    line = next(line for line in as_text(dissection).splitlines() if line.startswith(" 62"))
    assert "…" in line and line.endswith(keys)
    assert dissection["fields"]["62"] == keys
    assert dissect_pos(payload({"t": "0810", "62": keys}))["fields"]["62"] == HIDDEN  # key material: hidden


@pytest.mark.parametrize("unmask", [False, True])
def test_the_lean_dissection_traces_use_shows_the_same_values(unmask: bool) -> None:
    """Traces skip the per-field views; what they show of every field must not differ (masking included)."""
    transfer = {**PURCHASE, "3": "400000", "48": "6200002000000001"}
    for fields in (PURCHASE, transfer):
        full, lean = (
            dissect_pos(payload(fields), unmask=unmask),
            dissect_pos(payload(fields), unmask=unmask, with_views=False),
        )
        assert as_json(lean) == as_json(full) and lean["_views"] == []
    raw = encode_host({"t": "0210", "2": PAN, "35": TRACK2, "39": "51"})
    assert as_json(dissect_host(raw, with_views=False, unmask=unmask)) == as_json(dissect_host(raw, unmask=unmask))
