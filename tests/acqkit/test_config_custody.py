"""The configuration names no LMK: only the HSM's command line names the LMK file, only its environment keeps
the passphrase; clear import is a TEST switch of the HSM's own table."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from acqkit.config import AcqsimConfig, ConfigError, config_from_mapping, config_to_toml
from acqsim.supervisor import service_commands, with_ephemeral_ports


def test_an_old_lmk_setting_is_refused_and_the_new_ones_round_trip(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown key 'lmk'.*lmk_file"):
        config_from_mapping({"hsm": {"lmk": "TEST"}})
    with pytest.raises(ConfigError, match="allow_clear_import must be true or false"):
        config_from_mapping({"hsm": {"allow_clear_import": "yes"}})
    config = config_from_mapping(
        {"hsm": {"lmk_file": "vault/lmk.json", "allow_clear_import": False}}, base_dir=tmp_path
    )
    again = config_from_mapping(tomllib.loads(config_to_toml(config)))
    assert again.hsm.lmk_file == "vault/lmk.json" and again.hsm.allow_clear_import is False
    assert AcqsimConfig.default().hsm.allow_clear_import  # the built-in TEST configuration enables it


def test_only_the_hsm_is_told_where_the_lmk_is_and_keeps_the_passphrase(tmp_path: Path) -> None:
    config = with_ephemeral_ports(AcqsimConfig.default(data_dir=tmp_path))
    specs = {spec.name: spec for spec in service_commands(config, None)}
    hsm = specs["hsm"].argv
    assert hsm[hsm.index("--lmk-file") + 1] == str(tmp_path / "hsm" / "lmk.json")
    assert "--create-lmk" in hsm and "--allow-clear-import" in hsm
    assert specs["hsm"].withheld_env == frozenset()
    for name in ("ledger", "wallet", "frontend", "nac", "merchant"):
        assert not any("lmk" in word.lower() for word in specs[name].argv), name
        assert "ACQSIM_LMK_PASSPHRASE" in specs[name].withheld_env
    frontend = specs["frontend"].argv
    assert frontend[frontend.index("--key-store") + 1] == str(config.key_store_path)
