"""``acqsim hsm`` through the CLI entry point, and the server as a real process."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import pytest

from acqsim.cli import main
from hsm_sim.audit import read_audit
from hsm_sim.client import HsmClient
from hsm_sim.keys import DEFAULT_TEST_LMK

TMK_HEX = "0123456789ABCDEFFEDCBA9876543210"


def test_there_is_no_offline_tool_to_wrap_a_clear_key(capsys: pytest.CaptureFixture[str]) -> None:
    """Keys enter only through a running HSM's commands: ``encrypt-key`` (clear key on argv, LMK opened outside
    the serving HSM) is gone."""
    with pytest.raises(SystemExit) as usage:
        main(["hsm", "encrypt-key", "--type", "TMK", "--clear", TMK_HEX])
    assert usage.value.code == 2
    assert TMK_HEX not in capsys.readouterr().err


@pytest.mark.parametrize("lmk", ["0011", "0023456789ABCDEFFEDCBA9876543210", "XYZ"])
def test_a_bad_lmk_exits_2_without_echoing_it(lmk: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hsm", "--lmk", lmk, "--port", "0"]) == 2
    captured = capsys.readouterr()
    assert lmk not in captured.err + captured.out


@pytest.mark.anyio
async def test_acqsim_hsm_serves_and_prints_its_lmk_check_value(tmp_path: Path) -> None:
    audit = tmp_path / "hsm-audit.jsonl"
    process = await anyio.open_process([sys.executable, "-m", "acqsim", "hsm", "--port", "0", "--audit", str(audit)])
    try:
        assert process.stdout is not None
        output = b""
        with anyio.fail_after(20):
            while b"READY" not in output:
                output += await process.stdout.receive()
        text = output.decode()
        assert f"LMK check value {DEFAULT_TEST_LMK.check_value}" in text
        port = int(text.split("READY hsm 127.0.0.1:")[1].split()[0])
        async with await HsmClient.connect("127.0.0.1", port) as hsm:
            assert await hsm.diagnostics() == DEFAULT_TEST_LMK.check_value
    finally:
        process.terminate()
        with anyio.fail_after(10):
            await process.wait()
        await process.aclose()
    # SIGTERM stops the HSM cleanly: the audit log is flushed.
    assert [(e["client"], e["command"], e["outcome"]) for e in read_audit(audit)] == [("anonymous", "NC", "00")]
