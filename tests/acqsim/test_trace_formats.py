"""``acqsim trace show`` reads both trace formats — compact records (format 2, dissected when read) and the
full records older acqsim wrote (format 1) — side by side; a newer format or a file that is no trace is refused
with its name and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from acqsim.cli import main
from tests.wire.test_dissect_trace import PAN, PURCHASE, payload
from wire.trace import TraceWriter, read_trace

#: A front-end record as acqsim wrote it before the compact form (format 1): the message dissected in the line.
FORMAT_1 = {
    "time": "2026-12-01T09:00:00.000002+00:00",
    "service": "frontend",
    "direction": "out",
    "link": "hsm",
    "peer": "hsm",
    "correlation_id": "T10000001-000123",
    "note": "VerifyMac",
    "message": {"header": "----", "code": "M8", "error": None, "length": 6},
}


def _traces(folder: Path) -> Path:
    nac = TraceWriter(folder, "nac")
    nac.record(direction="in", link="pos", peer="127.0.0.1:40000", payload=payload(PURCHASE))
    nac.close()
    (folder / "frontend.jsonl").write_text(json.dumps(FORMAT_1) + "\n", encoding="utf-8")
    return folder


def test_trace_show_reads_compact_and_format_1_records_together(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _traces(tmp_path)
    assert PAN not in (folder / "nac.jsonl").read_text()
    assert main(["trace", "show", "T10000001-000123", "--trace-dir", str(folder), "--json"]) == 0
    hops = json.loads(capsys.readouterr().out)["hops"]
    assert [hop.split("ms  ")[1] for hop in hops] == ["front-end → HSM M8", "NAC ← terminal"]
    [nac] = read_trace(folder / "nac.jsonl")
    assert nac["message"]["fields"]["2"] == "620000******0003" and nac["message"]["fields"]["52"] == "[hidden]"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('{"v":3,"us":1}', "trace record format 3: this acqsim reads formats 1 and 2"),
        ("PK\x03\x04 not a trace", "line 2: Expecting value"),
        ('{"time": "2026-12-01"}', "not an acqsim trace record"),
    ],
)
def test_a_file_that_is_no_trace_or_a_newer_format_is_refused_by_name_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str, reason: str
) -> None:
    folder = _traces(tmp_path)
    with (folder / "frontend.jsonl").open("a", encoding="utf-8") as file:
        file.write(line + "\n")
    assert main(["trace", "show", "--last", "--trace-dir", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"acqsim trace: cannot read {folder / 'frontend.jsonl'}, line 2: ") and reason in err


def test_peers_notes_and_ids_that_need_escaping_read_back_as_written(tmp_path: Path) -> None:
    texts = ['rule 1 ("say \\"no\\""): answer', "back\\slash", "line\nbreak", "规则 2", "tab\there"]
    writer = TraceWriter(tmp_path, "ledger")
    for text in texts:
        writer.record(direction="out", link="host", peer=text, payload=b"", correlation_id=text, note=text)
    writer.close()
    records = read_trace(tmp_path / "ledger.jsonl")
    assert [(r["peer"], r["correlation_id"], r["note"]) for r in records] == [(t, t, t) for t in texts]
    assert all(r["message"] == {"length": 0} for r in records)
