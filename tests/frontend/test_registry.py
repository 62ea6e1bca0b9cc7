"""The front-end's registry holds only cryptograms from the key store; a configured terminal without a TMK
there stops the front-end at start-up, naming the terminal."""

from __future__ import annotations

from pathlib import Path

import pytest

from acqkit.config import AcqsimConfig
from acqkit.keystore import KeyStore, write_key_store
from acqsim.cli import main
from frontend.registry import Registry, RegistryError
from tests.keyring import key_store_for


def without(store: KeyStore, label: str) -> KeyStore:
    return KeyStore(store.lmk_kcv, {k: v for k, v in store.entries.items() if k != label})


def test_the_registry_takes_the_cryptograms_of_the_store(tmp_path: Path) -> None:
    config = AcqsimConfig.default(data_dir=tmp_path)
    store = key_store_for(config)
    registry = Registry.from_key_store(config, store)
    assert registry.terminals["10000001"].tmk_under_lmk == store.entries["tmk/10000001"].cryptogram
    assert registry.pvk_under_lmk == store.entries["pvk"].cryptogram
    with pytest.raises(RegistryError, match="terminal 10000002 has no TMK"):
        Registry.from_key_store(config, without(store, "tmk/10000002"))
    with pytest.raises(RegistryError, match="no PVK"):
        Registry.from_key_store(config, without(store, "pvk"))


def test_the_frontend_refuses_to_start_without_a_terminals_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = AcqsimConfig.default(data_dir=tmp_path)
    path = tmp_path / "keystore.json"
    assert main(["frontend", "--key-store", str(path)]) == 2
    assert "not found" in capsys.readouterr().err
    write_key_store(path, without(key_store_for(config), "tmk/10000001"))
    assert main(["frontend", "--key-store", str(path)]) == 2
    assert "terminal 10000001 has no TMK" in capsys.readouterr().err
