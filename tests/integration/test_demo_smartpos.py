"""The demo's smart-POS day on the in-process pipeline (the ``make test`` demo runs over processes, where no
wallet host runs): every step ends as expected, the chart is written, and no file it wrote nor anything it
printed holds a test PAN, PIN or clear key."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from acqkit.config import AcqsimConfig
from acqsim.demo_smartpos import CHART, smartpos_day
from acqsim.pipeline import running_pipeline
from tests.secrets_scan import secrets_in

pytestmark = pytest.mark.anyio


async def test_the_smart_pos_day(tmp_path: Path) -> None:
    config = AcqsimConfig.default(data_dir=tmp_path)
    lines: list[str] = []
    with anyio.fail_after(90):
        async with running_pipeline(config, trace=True) as pipeline:
            passed = await smartpos_day(config, lines.append, nac=pipeline.nac, wallet=pipeline.wallet)
    printed = "\n".join(lines)
    assert passed, printed
    assert "smart-POS day: 16 of 16 steps ended as expected" in printed
    assert "[FAIL]" not in printed
    assert (tmp_path / CHART).read_bytes().startswith(b"\x89PNG")
    hits = secrets_in(tmp_path, printed)
    assert hits == [], hits
