"""``acqsim trace stages``: the records of each transaction joined across the NAC, front-end and ledger traces
into stages that add up to the NAC-to-NAC time — on hand-made records, then on a real traced pipeline."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import anyio
import pytest

from acqkit.config import AcqsimConfig
from acqsim.cli import main
from acqsim.pipeline import running_pipeline
from acqsim.tracestages import TOTAL, percentile, stage_report, stages_of, transactions
from terminal.pos import PosTerminal

_ORIGIN = dt.datetime(2026, 12, 4, 22, 0, tzinfo=dt.UTC)
TERMINAL, STAN = "20000001", "000042"


def _record(at_ms: float, service: str, direction: str, link: str, **message: Any) -> dict[str, Any]:
    when = _ORIGIN + dt.timedelta(milliseconds=at_ms)
    nac = service == "nac"
    return {
        "time": when.isoformat(timespec="microseconds"),
        "service": service,
        "direction": direction,
        "link": link,
        "peer": "127.0.0.1:40000",
        "correlation_id": None if nac else f"T{TERMINAL}-{STAN}",
        "note": None,
        "message": message,
    }


#: The TPDU as the NAC traces it: the terminal's request (from 0000), forwarded with the NAC's own source
#: address (01fe), answered to that address, and sent back to the terminal (to 0000).
_TPDUS = {
    ("in", True): {"id": "60", "dst": "0003", "src": "0000"},
    ("out", False): {"id": "60", "dst": "0003", "src": "01fe"},
    ("in", False): {"id": "60", "dst": "01fe", "src": "0003"},
    ("out", True): {"id": "60", "dst": "0000", "src": "0003"},
}


def _nac(at_ms: float, direction: str, *, terminal_side: bool, mti: str) -> dict[str, Any]:
    tpdu = _TPDUS[(direction, terminal_side)]
    return _record(at_ms, "nac", direction, "pos", tpdu=tpdu, mti=mti, fields={"11": STAN, "41": TERMINAL})


def purchase(start_ms: float = 0.0) -> list[dict[str, Any]]:
    """A purchase's records, as the services trace them: times in ms from ``start_ms``."""
    t = start_ms
    return [
        _nac(t + 0.0, "in", terminal_side=True, mti="0200"),
        _nac(t + 0.1, "out", terminal_side=False, mti="0200"),
        _record(t + 0.5, "frontend", "in", "pos", mti="0200"),
        _record(t + 0.6, "frontend", "out", "hsm", code="M8"),
        _record(t + 0.6, "frontend", "out", "hsm", code="DC"),
        _record(t + 2.0, "frontend", "in", "hsm", code="M8"),
        _record(t + 2.5, "frontend", "in", "hsm", code="DC"),
        _record(t + 4.5, "frontend", "out", "host", mti="0200"),  # after the journal commit: 2 ms
        _record(t + 5.0, "ledger", "in", "host", mti="0200"),
        _record(t + 8.0, "ledger", "out", "host", mti="0210"),
        _record(t + 8.5, "frontend", "in", "host"),
        _record(t + 10.5, "frontend", "out", "hsm", code="M6"),
        _record(t + 11.0, "frontend", "in", "hsm", code="M6"),
        _record(t + 11.1, "frontend", "out", "pos", mti="0210"),
        _nac(t + 11.5, "in", terminal_side=False, mti="0210"),
        _nac(t + 11.6, "out", terminal_side=True, mti="0210"),
        {**_record(t + 3.0, "hsm", "in", "hsm", code="M8"), "correlation_id": None},  # names no transaction
    ]


def test_a_purchases_stages_are_named_in_order_and_add_up_to_the_nac_to_nac_time() -> None:
    [joined] = transactions(purchase())
    stages = [(stage.name, stage.micros) for stage in stages_of(joined.events)]
    assert stages == [
        ("NAC in → out, to the front-end", 100),
        ("NAC → front-end (wire, front-end's read)", 400),
        ("front-end before the HSM", 100),
        ("HSM round trip M8+DC", 1900),  # until the last answer: the front-end waits for both
        ("front-end between the HSM and the ledger (journal commit)", 2000),
        ("front-end → ledger (wire, ledger's read)", 500),
        ("ledger in → out (authorise, post, commit)", 3000),
        ("ledger → front-end (wire, front-end's read)", 500),
        ("front-end after the ledger", 2000),
        ("HSM round trip M6", 500),
        ("front-end after the HSM, answering", 100),
        ("front-end → NAC (wire, NAC's read)", 400),
        ("NAC in → out, to the terminal", 100),
    ]
    assert sum(micros for _, micros in stages) == 11_600


def test_a_recurring_stan_is_a_new_transaction_and_percentiles_are_nearest_rank() -> None:
    records = purchase() + purchase(start_ms=1000.0)
    slow = purchase(start_ms=2000.0)
    slow[9]["time"] = (_ORIGIN + dt.timedelta(milliseconds=2000 + 48.0)).isoformat()  # the ledger took 43 ms
    for later in slow[10:16]:
        later["time"] = (dt.datetime.fromisoformat(later["time"]) + dt.timedelta(milliseconds=40)).isoformat()
    [report] = stage_report(records + slow)
    assert report.mti == "0200" and report.transactions == 3
    ledger = next(s for s in report.stages if s.name.startswith("ledger in"))
    assert (ledger.count, ledger.p50_ms, ledger.p99_ms, ledger.max_ms) == (3, 3.0, 43.0, 43.0)
    assert ledger.mean_ms == pytest.approx(49 / 3)  # means add up to the mean total, percentiles do not
    assert report.total is not None and report.total.name == TOTAL
    assert (report.total.p50_ms, report.total.max_ms) == (11.6, 51.6)
    [window] = stage_report(records + slow, since=_ORIGIN + dt.timedelta(milliseconds=500))
    assert window.transactions == 2  # a run's warm-up left out: transactions that began before ``since``
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0 and percentile([1.0, 2.0, 3.0, 4.0], 99) == 4.0


def test_a_transaction_the_nac_never_saw_has_stages_but_no_total() -> None:
    frontend_only = [r for r in purchase() if r["service"] != "nac"]
    [report] = stage_report(frontend_only)
    assert report.mti == "?" and report.total is None
    assert report.stages[0].name == "front-end before the HSM"


async def _traced_day(config: AcqsimConfig) -> None:
    card = config.card("6200001000000003")
    async with (
        running_pipeline(config, trace=True) as pipeline,
        PosTerminal(config, "10000001", nac=pipeline.nac) as pos,
    ):
        await pos.sign_on()
        for amount in (100, 200, 300):
            assert await pos.financial("purchase", card, amount=amount, pin=card.pin) is not None


def test_trace_stages_reads_a_real_pipelines_traces(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = AcqsimConfig.default(data_dir=tmp_path / "data")
    anyio.run(_traced_day, config)
    trace_dir = str(config.trace_dir)
    assert main(["trace", "stages", "--trace-dir", trace_dir, "--json"]) == 0
    kinds = {kind["mti"]: kind for kind in json.loads(capsys.readouterr().out)["kinds"]}
    purchases = kinds["0200"]
    assert purchases["transactions"] == 3 and kinds["0800"]["transactions"] == 1
    names = [stage["name"] for stage in purchases["stages"]]
    assert names[0] == "NAC in → out, to the front-end" and names[-1] == "NAC in → out, to the terminal"
    assert "ledger in → out (authorise, post, commit)" in names and "HSM round trip M6" in names
    assert all(stage["count"] == 3 and 0 <= stage["p50_ms"] <= stage["max_ms"] for stage in purchases["stages"])
    total = purchases["total"]
    assert total["count"] == 3 and total["max_ms"] >= max(stage["p50_ms"] for stage in purchases["stages"])
    assert main(["trace", "stages", "--trace-dir", trace_dir]) == 0
    assert "MTI 0200: 3 transaction(s)" in capsys.readouterr().out


def test_trace_stages_says_so_when_nothing_was_traced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trace", "stages", "--trace-dir", str(tmp_path)]) == 1
    assert "no traced transaction" in capsys.readouterr().err


def test_the_front_end_traces_each_ledger_request_as_the_ledger_received_it(tmp_path: Path) -> None:
    """The front-end encodes a ledger request once, for the link and its trace: the compact frame it traces going
    out is the one the ledger traces coming in, purchase by purchase (same correlation id)."""
    config = AcqsimConfig.default(data_dir=tmp_path / "data")
    anyio.run(_traced_day, config)

    def host_frames(service: str, direction: str) -> dict[str, str]:
        lines = (config.trace_dir / f"{service}.jsonl").read_text().splitlines()
        records = [json.loads(line) for line in lines]
        return {r["c"]: r["x"] for r in records if r["l"] == "host" and r["d"] == direction}

    sent, received = host_frames("frontend", "out"), host_frames("ledger", "in")
    assert len(sent) == 3 and sent == received
