"""Structured logs as an operator reads them: ``acqsim up -v --log-format json`` passes both options down to
every service; each log line is a JSON object, and one purchase's lines are found at all four services by its
transaction id, with its card number masked."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from acqsim.cli import main
from acqsim.processes import running_processes

SERVICES = ("nac", "frontend", "hsm", "ledger")
#: What a text log line starts with (acqkit.txnlog.TEXT_FORMAT): none may be left in JSON mode.
TEXT_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")
FULL_PAN = "6200001000000003"  # the TEST card `acqsim send` uses by default


def _records(log: Path) -> list[dict[str, Any]]:
    """Every log record of a service's log; the rest are its announcements on stdout (READY and the like)."""
    lines = log.read_text(encoding="utf-8").splitlines()
    assert not [line for line in lines if TEXT_LOG_LINE.match(line)], f"a text log line in {log}"
    return [json.loads(line) for line in lines if line.startswith("{")]


def test_one_purchase_is_found_at_every_service_by_its_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    with running_processes(data_dir=data, up_args=("-v", "--log-format", "json")) as nac:
        code = main(["send", "--data-dir", str(data), "--nac", str(nac), "--amount", "12.34", "purchase", "--json"])
        answer = json.loads(capsys.readouterr().out)
        assert code == 0 and answer["response_code"] == "00"
    txn = f"T{answer['terminal']}-{answer['request']['fields']['11']}"

    records = {service: _records(data / "logs" / f"{service}.log") for service in SERVICES}
    for service in SERVICES:
        mine = [r for r in records[service] if r.get("txn") == txn]
        assert mine, f"no line of {txn} at the {service}"
        assert all(r["service"] == service and r["logger"] == "acqsim.txn" for r in mine)
        assert all(FULL_PAN not in json.dumps(r) for r in records[service])  # card data masked, always
    iso_hops = {service: records[service] for service in ("nac", "frontend", "ledger")}
    for service, lines in iso_hops.items():
        [line] = [r for r in lines if r.get("txn") == txn]
        assert (line["mti"], line["amount"], line["code"]) == ("0200", "000000001234", "00"), service
        assert line["pan"] == "620000******0003"
    hsm_commands = [r["command"] for r in records["hsm"] if r.get("txn") == txn]
    assert {"M8", "DC", "M6"} <= set(hsm_commands)  # MAC and PIN checked, the answer MACed: one line each
    # -v reached the services: their INFO lines (not only the transaction records) are there
    assert any(r["level"] == "INFO" and r["logger"] == "acqsim.frontend" for r in records["frontend"])
