"""``acqsim hsm``: ``encrypt-key`` through the CLI entry point, and the server as a real process."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import pytest

from acqsim.cli import main
from hsm_sim.audit import read_audit
from hsm_sim.client import HsmClient
from hsm_sim.keys import DEFAULT_TEST_LMK, KeyType, decrypt_under_lmk

TMK_HEX = "0123456789ABCDEFFEDCBA9876543210"


def test_encrypt_key_puts_a_clear_test_key_under_the_lmk(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hsm", "encrypt-key", "--type", "TMK", "--clear", TMK_HEX]) == 0
    out = capsys.readouterr().out
    token = out.split()[0]
    assert decrypt_under_lmk(DEFAULT_TEST_LMK, KeyType.TMK, token) == bytes.fromhex(TMK_HEX)
    assert TMK_HEX not in out


@pytest.mark.parametrize(
    "argv",
    [
        ["hsm", "encrypt-key", "--type", "TMK", "--clear", "0023456789ABCDEFFEDCBA9876543210"],  # even parity
        ["hsm", "encrypt-key", "--type", "TMK", "--clear", "XYZ"],
        ["hsm", "encrypt-key", "--type", "TMK"],
        ["hsm", "--lmk", "0011", "encrypt-key", "--type", "TMK", "--clear", TMK_HEX],
    ],
)
def test_bad_arguments_exit_2_without_echoing_key_material(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert "0023456789ABCDEF" not in captured.err + captured.out
    assert TMK_HEX not in captured.err + captured.out


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
