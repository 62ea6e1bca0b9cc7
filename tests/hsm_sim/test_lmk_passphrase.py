"""The LMK file at the HSM's first start: a random LMK and, without $ACQSIM_LMK_PASSPHRASE, a random
passphrase file beside it (0600); later starts open the same LMK; a missing passphrase says what to set."""

from __future__ import annotations

from pathlib import Path

import pytest

from hsm_sim.keys import DEFAULT_TEST_LMK
from hsm_sim.lmk_store import LmkFileError, open_or_create_lmk, read_passphrase_file
from hsm_sim.server import open_sealed_lmk


def test_first_start_creates_a_random_lmk_and_later_starts_open_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ACQSIM_LMK_PASSPHRASE", raising=False)
    lmk_file = tmp_path / "hsm" / "lmk.json"
    with pytest.raises(LmkFileError, match="not found"):
        open_sealed_lmk(lmk_file, create=False)
    created, was_created = open_sealed_lmk(lmk_file, create=True)
    assert was_created and created != DEFAULT_TEST_LMK
    passphrase_file = lmk_file.with_name("lmk.pass")
    assert passphrase_file.stat().st_mode & 0o777 == 0o600 and lmk_file.stat().st_mode & 0o777 == 0o600
    assert len(read_passphrase_file(passphrase_file)) >= 32
    assert open_sealed_lmk(lmk_file, create=True) == (created, False)
    passphrase_file.unlink()
    with pytest.raises(LmkFileError, match="ACQSIM_LMK_PASSPHRASE"):
        open_sealed_lmk(lmk_file, create=True)


def test_the_environment_passphrase_wins_and_an_empty_file_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACQSIM_LMK_PASSPHRASE", "TEST passphrase - test material only")
    lmk_file = tmp_path / "lmk.json"
    created, _ = open_sealed_lmk(lmk_file, create=True)
    assert not lmk_file.with_name("lmk.pass").exists()  # no file when the environment gives the passphrase
    assert open_or_create_lmk(lmk_file, "TEST passphrase - test material only", create=False) == (created, False)
    empty = tmp_path / "empty.pass"
    empty.write_text("\n")
    with pytest.raises(LmkFileError, match="empty"):
        read_passphrase_file(empty)
