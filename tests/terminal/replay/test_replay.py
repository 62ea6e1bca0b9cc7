"""Replay: pcap round trip, diffs with ignore rules, and replays of a traced day against a live pipeline."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import anyio
import pytest

from acqkit.config import AcqsimConfig, Endpoint
from acqkit.exitcodes import EXIT_UNREACHABLE
from acqsim.cli import main
from acqsim.pipeline import running_pipeline
from terminal.pos import PosTerminal
from terminal.replay.diff import DEFAULT_IGNORED, diff_fields, parse_ignore
from terminal.replay.pcap import CapturedFrame, read_pcap, write_pcap
from terminal.replay.runner import replay
from terminal.replay.sources import from_pcap, from_trace


def test_pcap_round_trip(tmp_path: Path) -> None:
    frames = [
        CapturedFrame(1000.0 + i, i % 2 == 0, bytes([0x60, 0, 3, 0, 0]) + bytes(range(i + 20))) for i in range(10)
    ]
    path = tmp_path / "pos.pcap"
    assert write_pcap(frames, path) == 10
    back = list(read_pcap(path))
    assert [(f.to_host, f.payload) for f in back] == [(f.to_host, f.payload) for f in frames]
    assert back[3].time == pytest.approx(1003.0)


def test_diff_ignores_what_always_changes() -> None:
    recorded = {"11": "000001", "37": "1", "39": "00", "4": "000000000100"}
    assert diff_fields(recorded, {**recorded, "11": "000009", "37": "2"}) == []
    changed = diff_fields(recorded, {**recorded, "39": "51"})
    assert [(d.field, d.recorded, d.replayed) for d in changed] == [("39", "00", "51")]
    assert parse_ignore("39", keep_defaults=False) == frozenset({"39"})
    assert parse_ignore(None) == DEFAULT_IGNORED


async def _record_day(config: AcqsimConfig) -> None:
    card = config.card("6200001000000003")
    async with (
        running_pipeline(config, trace=True) as pipeline,
        PosTerminal(config, "10000001", nac=pipeline.nac) as pos,
    ):
        await pos.sign_on()
        for amount in (100, 200):
            assert (await pos.financial("purchase", card, amount=amount, pin=card.pin)) is not None
        await pos.financial("purchase", card, amount=100, pin="000000")  # 55


@pytest.mark.anyio
async def test_replay_a_traced_day_same_changed_and_missing(tmp_path: Path) -> None:
    recorded_config = AcqsimConfig.default(data_dir=tmp_path / "recorded")
    await _record_day(recorded_config)
    trace = recorded_config.trace_dir / "nac.jsonl"
    exchanges = from_trace(trace)
    assert [e.mti for e in exchanges] == ["0800", "0200", "0200", "0200"]

    fresh = AcqsimConfig.default(data_dir=tmp_path / "fresh")
    async with running_pipeline(fresh) as pipeline:
        results = await replay(fresh, exchanges, pipeline.nac, raw=False, ignored=DEFAULT_IGNORED)
    assert results[0].skipped  # the sign-on is not re-built: the replayer signs on itself
    assert all(r.answered and not r.differences for r in results[1:3])
    # A rebuilt request carries the test card's right PIN: the recorded 55 comes back as 00, and only 39 differs.
    assert [(d.field, d.recorded, d.replayed) for d in results[3].differences] == [("39", "55", "00")]

    # The same day against a ledger where the card is short of money: field 39 differs.
    poor = AcqsimConfig.default(data_dir=tmp_path / "poor")
    poor = dataclasses.replace(
        poor, cards=tuple(dataclasses.replace(c, balance=150) if c.pan == "6200001000000003" else c for c in poor.cards)
    )
    async with running_pipeline(poor) as pipeline:
        results = await replay(poor, exchanges, pipeline.nac, raw=False, ignored=DEFAULT_IGNORED)
    assert [d.field for d in results[2].differences] == ["39"]
    assert results[2].differences[0].replayed == "51"

    # Nobody listening: no answers.
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()
    missing = await replay(
        fresh, exchanges[1:2], Endpoint(host="127.0.0.1", port=port), raw=False, ignored=DEFAULT_IGNORED
    )
    assert not missing[0].answered and not missing[0].ok


def test_trace_export_then_replay_the_capture_raw(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = AcqsimConfig.default(data_dir=tmp_path)
    anyio.run(_record_day, config)
    capture = tmp_path / "day.pcap"
    assert main(["trace", "export", "--pcap", str(capture), "--trace-dir", str(config.trace_dir)]) == 0
    exchanges = from_pcap(capture)
    assert [e.mti for e in exchanges] == ["0800", "0200", "0200", "0200"]
    assert all(e.answer_fields is not None for e in exchanges)
    assert "6200001000000003" not in capture.read_bytes().hex()
    capsys.readouterr()
    assert main(["replay", "--pcap", str(capture), "--against", "127.0.0.1:1"]) == EXIT_UNREACHABLE
    assert capsys.readouterr().err == "acqsim replay: nothing accepts a connection at 127.0.0.1:1\n"
