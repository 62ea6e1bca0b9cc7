"""The ``[scheme]`` configuration section (acqkit/schemeconfig.py) and what ``acqsim up`` makes of it: the
parties' processes in dependency order, their own ports, and bad values named."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from acqkit.config import AcqsimConfig, ConfigError, config_from_mapping, config_to_toml, load_config
from acqkit.schemeconfig import STAND_IN_MARGIN_S, SWITCH_TIMEOUT_S
from acqsim.fourparty import ISSUER_B_ID, with_scheme
from acqsim.supervisor import service_commands, with_ephemeral_ports


def test_the_test_world_round_trips_through_toml_and_without_scheme_nothing_changes(tmp_path: Path) -> None:
    config = with_scheme(AcqsimConfig.default(data_dir=tmp_path))
    again = config_from_mapping(tomllib.loads(config_to_toml(config)))
    assert again.scheme == config.scheme and again.cards == config.cards
    assert config.scheme is not None and config.scheme.off_us == ("623050", "625050")
    assert config.scheme.issuer_of("6230501000000014") is config.scheme.issuers[0]
    assert config.scheme.issuer_of("6200001000000003") is None
    plain = service_commands(AcqsimConfig.default(data_dir=tmp_path), None)
    assert [s.title for s in plain] == ["hsm", "ledger", "wallet", "frontend", "nac", "merchant"]
    assert all("--scheme" not in s.argv for s in plain)


def test_up_starts_each_issuer_then_the_switch_before_the_acquirer(tmp_path: Path) -> None:
    config = with_ephemeral_ports(with_scheme(AcqsimConfig.default(data_dir=tmp_path)))
    config.check_listen_ports()
    specs = service_commands(config, None)
    assert [s.title for s in specs] == [
        "issuer-bank-b-hsm",
        "issuer-bank-b-ledger",
        "issuer-bank-b",
        "scheme-hsm",
        "scheme",
        "hsm",
        "ledger",
        "wallet",
        "frontend",
        "nac",
        "merchant",
    ]
    assert len({s.endpoint for s in specs}) == len(specs)  # every party on a port of its own
    by_title = {s.title: s for s in specs}
    assert config.scheme is not None
    frontend = by_title["frontend"].argv
    assert frontend[frontend.index("--scheme") + 1] == str(config.scheme.listen)
    # each party's HSM its own LMK file and audit, only its own identity allowed
    issuer_hsm, switch_hsm = by_title["issuer-bank-b-hsm"].argv, by_title["scheme-hsm"].argv
    assert issuer_hsm[issuer_hsm.index("--lmk-file") + 1] != switch_hsm[switch_hsm.index("--lmk-file") + 1]
    assert "--allowed-client=issuer:" in issuer_hsm and "--allowed-client=scheme:" in switch_hsm
    # acqsim up's --rules/--metrics by service name do not reach the other banks' HSMs and ledgers
    assert not by_title["issuer-bank-b-ledger"].takes_service_options


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        ("member_id", "6305", "member_id must be 8 digits"),
        ("zpk", "XYZ", "zpk must be 32 hex"),
        ("debit_bins", [623050], "debit_bins must be a list"),
        ("colour", "red", "unknown key 'colour'"),
        ("name", "bank b!", "name must be letters"),
    ],
)
def test_a_bad_issuer_entry_is_named(tmp_path: Path, key: str, value: object, named: str) -> None:
    raw = tomllib.loads(config_to_toml(with_scheme(AcqsimConfig.default(data_dir=tmp_path))))
    assert raw["scheme"]["issuers"][0]["member_id"] == ISSUER_B_ID
    raw["scheme"]["issuers"][0][key] = value
    with pytest.raises(ConfigError, match=named):
        config_from_mapping(raw)


def test_a_typo_in_the_scheme_table_is_named_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "acqsim.toml"
    text = config_to_toml(with_scheme(AcqsimConfig.default(data_dir=tmp_path)))
    path.write_text(text.replace("stand_in_limit =", "stand_in_limt ="), encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown key 'stand_in_limt'"):
        load_config(path)


@pytest.mark.parametrize("issuer_timeout", [SWITCH_TIMEOUT_S - STAND_IN_MARGIN_S, SWITCH_TIMEOUT_S, 30.0])
def test_an_issuer_timeout_that_leaves_no_time_to_stand_in_is_refused(tmp_path: Path, issuer_timeout: float) -> None:
    raw = tomllib.loads(config_to_toml(with_scheme(AcqsimConfig.default(data_dir=tmp_path))))
    raw["scheme"]["issuer_timeout_s"] = issuer_timeout
    with pytest.raises(ConfigError, match=r"issuer_timeout_s = .*SWITCH_TIMEOUT_S = 8\.0 s") as refused:
        config_from_mapping(raw)
    assert refused.value.key == "issuer_timeout_s"
    assert f"{issuer_timeout}" in str(refused.value)


def test_an_issuer_timeout_with_the_margin_to_spare_is_kept(tmp_path: Path) -> None:
    raw = tomllib.loads(config_to_toml(with_scheme(AcqsimConfig.default(data_dir=tmp_path))))
    raw["scheme"]["issuer_timeout_s"] = SWITCH_TIMEOUT_S - STAND_IN_MARGIN_S - 0.5
    scheme = config_from_mapping(raw).scheme
    assert scheme is not None
    assert scheme.issuer_timeout_s == SWITCH_TIMEOUT_S - STAND_IN_MARGIN_S - 0.5
