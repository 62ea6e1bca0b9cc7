"""A short fuzz run against the in-process pipeline: the host keeps serving, the good terminal loses nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from acqkit.config import AcqsimConfig
from acqkit.exitcodes import EXIT_UNREACHABLE
from acqsim.cli import main
from acqsim.cmd_fuzz import check_good_postings
from acqsim.pipeline import running_pipeline
from terminal.fuzz.runner import run_fuzz

pytestmark = pytest.mark.anyio

#: Short enough for every `make test` (per target); the million-frame figures are in docs/reliability.md.
FRAMES = {"nac": 300, "frontend": 1500}
#: A mutant the host neither answers nor closes on is counted after this (the host is right to wait).
ANSWER_TIMEOUT_S = 0.3


@pytest.mark.parametrize("at", ["nac", "frontend"])
async def test_short_fuzz_run_loses_nothing(tmp_path: Path, at: str) -> None:
    config = AcqsimConfig.default(data_dir=tmp_path)
    async with running_pipeline(config) as pipeline:
        target = pipeline.nac if at == "nac" else pipeline.frontend
        report = await run_fuzz(
            config, target, frames=FRAMES[at], seed=1, connections=8, answer_timeout=ANSWER_TIMEOUT_S
        )
        pipeline.cancel.cancel()
    assert report.frames_sent == FRAMES[at]
    assert report.crashes == []
    assert report.good_signed_on and report.good, "the good terminal transacted beside the fuzzer"
    assert report.hangs == 0
    assert check_good_postings(report, config.store_path(config.ledger.db)) == []
    assert report.good_lost == 0 and report.clean


async def test_fuzz_reports_a_host_that_stops_accepting(tmp_path: Path) -> None:
    config = AcqsimConfig.default(data_dir=tmp_path)
    async with running_pipeline(config) as pipeline:
        nac = pipeline.nac
        pipeline.cancel.cancel()
    report = await run_fuzz(config, nac, frames=10, seed=0, connections=1, answer_timeout=ANSWER_TIMEOUT_S)
    assert report.crashes and "stopped accepting" in report.crashes[0]
    assert not report.clean


def test_cli_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fuzz", "--frames", "0"]) == 2
    assert "--frames" in capsys.readouterr().err
    assert main(["fuzz", "--against", "not-an-endpoint"]) == 2


def test_cli_against_a_host_that_never_accepts_is_unreachable_not_a_finding(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["fuzz", "--against", "127.0.0.1:1", "--frames", "5", "--json"])
    captured = capsys.readouterr()
    assert code == EXIT_UNREACHABLE
    assert captured.out == ""  # no report: nothing was fuzzed
    assert captured.err == "acqsim fuzz: nothing accepts a connection at 127.0.0.1:1\n"
