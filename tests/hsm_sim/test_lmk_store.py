"""The LMK file: round trip, wrong passphrase, tampering — each a clear LmkFileError."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from hsm_sim.keys import DEFAULT_TEST_LMK
from hsm_sim.lmk_store import LmkFileError, load_lmk_file, random_lmk, read_lmk_check_value, write_lmk_file

PASSPHRASE = "TEST passphrase - test material only"


def test_round_trip_and_mode(tmp_path: Path) -> None:
    path = tmp_path / "hsm" / "lmk.json"
    lmk = random_lmk()
    write_lmk_file(path, lmk, PASSPHRASE)
    assert load_lmk_file(path, PASSPHRASE) == lmk
    assert read_lmk_check_value(path) == lmk.check_value
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert lmk.key.hex() not in path.read_text().lower()


def test_wrong_passphrase_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "lmk.json"
    write_lmk_file(path, DEFAULT_TEST_LMK, PASSPHRASE, test=True)
    with pytest.raises(LmkFileError, match="wrong passphrase"):
        load_lmk_file(path, "not it")


@pytest.mark.parametrize("field", ["ciphertext", "kcv", "test"])
def test_tampered_file_is_a_clear_error(tmp_path: Path, field: str) -> None:
    path = tmp_path / "lmk.json"
    write_lmk_file(path, DEFAULT_TEST_LMK, PASSPHRASE, test=True)
    document = json.loads(path.read_text())
    if field == "ciphertext":
        document[field] = ("0" if document[field][0] != "0" else "1") + document[field][1:]
    elif field == "kcv":
        document[field] = "000000"
    else:
        document[field] = False
    path.write_text(json.dumps(document))
    with pytest.raises(LmkFileError, match="altered"):
        load_lmk_file(path, PASSPHRASE)


def test_missing_file_names_the_command(tmp_path: Path) -> None:
    with pytest.raises(LmkFileError, match="acqsim hsm lmk create"):
        load_lmk_file(tmp_path / "none.json", PASSPHRASE)


def test_random_lmk_has_odd_parity_and_differs() -> None:
    assert random_lmk() != random_lmk()
