"""``acqsim hsm encrypt-key`` through the real CLI entry point."""

from __future__ import annotations

import pytest

from acqsim.cli import main
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
