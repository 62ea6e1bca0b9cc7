"""The serving settings of the configuration: the TLS switch and each service's connection cap."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from acqkit.config import NAC_MAX_CONNECTIONS, ConfigError, config_from_mapping, config_to_toml
from acqkit.netio import DEFAULT_MAX_CONNECTIONS
from acqkit.serving import serving_for
from acqkit.tls import TlsMaterialMissing, create_all
from acqsim.supervisor import service_commands


def test_defaults_are_plain_tcp_and_named_caps() -> None:
    config = config_from_mapping({})
    assert config.tls is False
    assert config.hsm.max_connections == config.ledger.max_connections == DEFAULT_MAX_CONNECTIONS
    assert config.nac.max_connections == NAC_MAX_CONNECTIONS


def test_switch_and_caps_round_trip_through_toml(tmp_path: Path) -> None:
    config = config_from_mapping(
        {
            "tls": True,
            "hsm": {"max_connections": 7},
            "frontend": {"max_connections": 9},
            "wallet": {"port": 6820, "max_connections": 11},
            "merchant": {"db": "apps.sqlite3"},
        },
        base_dir=tmp_path,
    )
    again = config_from_mapping(tomllib.loads(config_to_toml(config)))
    assert again.tls and again.hsm.max_connections == 7 and again.frontend.max_connections == 9
    assert again.wallet.listen.port == 6820 and again.wallet.max_connections == 11
    assert again.merchant_platform.db == "apps.sqlite3"
    assert again.tls_dir == again.data_dir / "tls"
    argv = {spec.name: spec.argv for spec in service_commands(again, None)}
    for name in ("hsm", "ledger", "wallet", "frontend", "nac", "merchant"):  # the smart-POS hops too
        assert "--tls-dir" in argv[name]
    assert argv["hsm"][argv["hsm"].index("--max-connections") + 1] == "7"
    assert argv["wallet"][argv["wallet"].index("--max-connections") + 1] == "11"
    assert argv["frontend"][argv["frontend"].index("--wallet") + 1] == "127.0.0.1:6820"  # QR goes to the wallet
    assert argv["merchant"][argv["merchant"].index("--db") + 1] == str(again.data_dir / "apps.sqlite3")


@pytest.mark.parametrize(
    "raw",
    [
        {"tls": "yes"},
        {"ledger": {"max_connections": 0}},
        {"nac": {"max_connections": True}},
        {"wallet": {"port": "5820"}},
        {"merchant": {"hots": "127.0.0.1"}},
    ],
)
def test_bad_values_are_named(raw: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        config_from_mapping(raw)


def test_serving_for_reads_the_switch_and_says_what_is_missing(tmp_path: Path) -> None:
    config = config_from_mapping({"tls": True, "data_dir": str(tmp_path)})
    with pytest.raises(TlsMaterialMissing, match="acqsim certs create"):
        serving_for("hsm", tls_dir=None, max_connections=None, config=config)
    create_all(config.tls_dir)
    serving = serving_for("hsm", tls_dir=None, max_connections=3, config=config)
    assert serving.server_tls is not None and serving.client_tls is not None and serving.max_connections == 3
    assert serving_for("hsm", tls_dir=None, max_connections=None).server_tls is None
    with pytest.raises(ValueError, match="at least 1"):
        serving_for("hsm", tls_dir=None, max_connections=0)
