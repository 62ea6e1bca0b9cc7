"""``acqsim hsm lmk create|show`` through the CLI entry point."""

from __future__ import annotations

from pathlib import Path

import pytest

from acqsim.cli import main
from hsm_sim.keys import DEFAULT_TEST_LMK
from hsm_sim.lmk_store import load_lmk_file

PASSPHRASE = "TEST passphrase - test material only"


def test_create_test_lmk_then_show_only_its_check_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "hsm" / "lmk.json"
    monkeypatch.setenv("ACQSIM_LMK_PASSPHRASE", PASSPHRASE)
    assert main(["hsm", "lmk", "create", "--test", "--lmk-file", str(path)]) == 0
    assert "TEST LMK" in capsys.readouterr().out
    assert load_lmk_file(path, PASSPHRASE) == DEFAULT_TEST_LMK
    assert main(["hsm", "lmk", "show", "--lmk-file", str(path)]) == 0
    out = capsys.readouterr().out
    assert DEFAULT_TEST_LMK.check_value in out
    assert DEFAULT_TEST_LMK.key.hex().upper() not in out.upper()
    # create never overwrites an existing LMK file
    assert main(["hsm", "lmk", "create", "--lmk-file", str(path)]) == 2
    assert load_lmk_file(path, PASSPHRASE) == DEFAULT_TEST_LMK


def test_create_without_passphrase_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("ACQSIM_LMK_PASSPHRASE", raising=False)
    assert main(["hsm", "lmk", "create", "--lmk-file", str(tmp_path / "lmk.json")]) == 2
    assert "ACQSIM_LMK_PASSPHRASE" in capsys.readouterr().err
    assert not (tmp_path / "lmk.json").exists()
