"""``acqsim hsm lmk rotate`` end to end: a pipeline transacts, the LMK is rotated (every key of the key store
translated by BW, check values unchanged, the old LMK kept as a dated backup), the pipeline restarts on the
new LMK and transacts again; a rotation that fails half-way changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from acqkit.config import AcqsimConfig
from acqkit.keystore import (
    KeyStore,
    finish_interrupted_rotation,
    pending_store_path,
    read_key_store,
    write_key_store,
)
from acqsim.cli import main
from acqsim.pipeline import running_pipeline
from hsm_sim.api import passphrase_file_for
from hsm_sim.lmk_store import load_lmk_file, read_lmk_check_value, read_passphrase_file
from terminal.pos import PosTerminal

PAN = "6200001000000003"


async def purchase(config: AcqsimConfig) -> str:
    card = config.card(PAN)
    async with running_pipeline(config) as pipeline, PosTerminal(config, "10000001", nac=pipeline.nac) as pos:
        signed = await pos.sign_on()
        assert signed is not None and signed.approved
        bought = await pos.financial("purchase", card, amount=1_000, pin=card.pin)
        assert bought is not None
        return bought.response_code


def rotate(config: AcqsimConfig) -> int:
    lmk_file = Path(config.store_path(config.hsm.lmk_file))
    argv = ["hsm", "lmk", "rotate", "--lmk-file", str(lmk_file), "--key-store", str(config.key_store_path)]
    return main([*argv, "--passphrase-file", str(passphrase_file_for(lmk_file))])


def test_rotate_then_restart_and_transact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("ACQSIM_LMK_PASSPHRASE", raising=False)
    config = AcqsimConfig.default(data_dir=tmp_path)
    assert anyio.run(purchase, config) == "00"
    lmk_file = Path(config.store_path(config.hsm.lmk_file))
    before = read_key_store(config.key_store_path)
    assert before.lmk_kcv == read_lmk_check_value(lmk_file)

    assert rotate(config) == 0
    out = capsys.readouterr().out
    after = read_key_store(config.key_store_path)
    assert after.lmk_kcv == read_lmk_check_value(lmk_file) != before.lmk_kcv
    assert after.entries.keys() == before.entries.keys()
    for label, entry in after.entries.items():
        assert entry.kcv == before.entries[label].kcv  # the same keys …
        assert entry.cryptogram != before.entries[label].cryptogram  # … under the new LMK
    (backup,) = lmk_file.parent.glob("lmk.json.*.bak")
    passphrase = read_passphrase_file(passphrase_file_for(lmk_file))
    assert load_lmk_file(backup, passphrase).check_value == before.lmk_kcv  # the old LMK is kept
    assert str(backup) in out and before.lmk_kcv in out

    # As if the rotation had crashed between its LMK write and its store rename (steps 4 and 5):
    write_key_store(pending_store_path(config.key_store_path), after)
    write_key_store(config.key_store_path, before)
    assert anyio.run(purchase, config) == "00"  # restarted on the new LMK: the ceremony finishes the rotation …
    assert read_key_store(config.key_store_path) == after  # … and reuses every key


def test_a_rotation_that_fails_half_way_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("ACQSIM_LMK_PASSPHRASE", raising=False)
    config = AcqsimConfig.default(data_dir=tmp_path)
    assert anyio.run(purchase, config) == "00"
    lmk_file = Path(config.store_path(config.hsm.lmk_file))
    document = json.loads(config.key_store_path.read_text())
    document["keys"][-1]["type"] = "ZMK"  # the last key, a TMK, is said to be a ZMK: BW answers 10
    config.key_store_path.write_text(json.dumps(document))
    lmk_before, store_before = lmk_file.read_bytes(), config.key_store_path.read_bytes()

    assert rotate(config) == 1
    err = capsys.readouterr().err
    assert "error 10" in err and "nothing changed" in err
    assert lmk_file.read_bytes() == lmk_before and config.key_store_path.read_bytes() == store_before
    assert not list(lmk_file.parent.glob("*.bak")) and not pending_store_path(config.key_store_path).exists()


def test_an_interrupted_rotation_is_finished_or_discarded(tmp_path: Path) -> None:
    store_path = tmp_path / "keystore.json"
    write_key_store(store_path, KeyStore())
    pending = pending_store_path(store_path)
    write_key_store(pending, KeyStore("A" * 16, {}))
    assert not finish_interrupted_rotation(store_path, "B" * 16)  # the new LMK never went live: discarded
    assert not pending.exists()
    write_key_store(pending, KeyStore("B" * 16, {}))
    assert finish_interrupted_rotation(store_path, "B" * 16)  # the new LMK is live: the store follows it
    assert read_key_store(store_path).lmk_kcv == "B" * 16 and not pending.exists()
