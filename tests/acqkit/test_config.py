from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from acqkit.config import AcqsimConfig, ConfigError, Endpoint, config_to_toml, load_config
from terminal.cards import luhn_valid
from terminal.load.runner import with_load_terminals


def test_default_cards_have_valid_luhn_and_track2() -> None:
    config = AcqsimConfig.default()
    assert {c.note.split(",")[0] for c in config.cards} >= {"good", "expired", "lost", "stolen", "low balance (10.00)"}
    for card in config.cards:
        assert luhn_valid(card.pan), card.pan
        pan, sep, rest = card.track2.partition("=")
        assert (pan, sep) == (card.pan, "=")
        assert rest[:4] == card.expiry and rest[7] == card.pvki and rest[8:12] == card.pvv


def test_toml_overrides_and_routes(tmp_path: Path) -> None:
    path = tmp_path / "acqsim.toml"
    path.write_text(
        'data_dir = "state"\n'
        '[ledger]\nport = 6000\ndb = "postgresql://127.0.0.1/ledger"\n'
        '[nac.routes]\n"0003" = ["frontend", "127.0.0.1:7000"]\n'
        '[[terminals]]\nterminal_id = "20000001"\nmerchant_id = "898100000000001"\n'
        'tmk = "0123456789ABCDEFFEDCBA9876543210"\n'
    )
    config = load_config(path)
    assert config.data_dir == tmp_path / "state"
    assert config.ledger.listen.port == 6000
    assert config.store_path(config.ledger.db) == "postgresql://127.0.0.1/ledger"
    assert config.store_path(config.frontend.db) == str(tmp_path / "state" / "frontend.sqlite3")
    assert config.route_members("0003") == (config.frontend.listen, Endpoint(host="127.0.0.1", port=7000))
    assert [t.terminal_id for t in config.terminals] == ["20000001"]
    assert config.to_dict()["nac"]["routes"] == {"0003": ["frontend", "127.0.0.1:7000"]}


def test_bad_config_names_the_table(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[[cards]]\npan = "1"\nunknown_key = 3\n')
    with pytest.raises(ConfigError, match=r"\[\[cards\]\] entry 0"):
        load_config(path)
    with pytest.raises(ConfigError, match="host:port"):
        Endpoint.parse("nohost")


def test_a_configuration_written_as_toml_reads_back_the_same(tmp_path: Path) -> None:
    """What ``acqsim load`` and the benchmarks hand to ``acqsim up``: every setting and fixture survives."""
    base = dataclasses.replace(AcqsimConfig.default(data_dir=tmp_path / "data"), trace=False, acquirer_id="48001234")
    configs = [base, with_load_terminals(base, 3)]
    cards = tuple(dataclasses.replace(c, daily_limit=500_00) if i == 0 else c for i, c in enumerate(base.cards))
    configs.append(dataclasses.replace(base, cards=cards))
    for config in configs:
        path = tmp_path / "written.toml"
        path.write_text(config_to_toml(config))
        assert load_config(path) == config


def test_max_connections_per_service_round_trip_and_refuse_nonsense(tmp_path: Path) -> None:
    from acqkit.config import config_from_mapping

    config = config_from_mapping({"hsm": {"max_connections": 8}, "frontend": {"max_connections": 300}})
    assert (config.hsm.max_connections, config.frontend.max_connections, config.ledger.max_connections) == (
        8,
        300,
        1024,
    )
    path = tmp_path / "acqsim.toml"
    path.write_text(config_to_toml(config), encoding="utf-8")
    assert load_config(path).frontend.max_connections == 300
    with pytest.raises(ConfigError, match=r"\[ledger\] max_connections"):
        config_from_mapping({"ledger": {"max_connections": 0}})


def test_an_unknown_key_is_refused_with_file_line_and_the_nearest_valid_key(tmp_path: Path) -> None:
    path = tmp_path / "acqsim.toml"
    path.write_text("trace = false\n\n[frontend]\nport = 6000\nmax_conections = 10\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:5: [frontend] unknown key 'max_conections'")
    assert "did you mean 'max_connections'" in message
    path.write_text("tarce = true\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r":1: unknown key 'tarce' \(did you mean 'trace'\?\)"):
        load_config(path)
    path.write_text("[hsm]\nport = \n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"line 2"):  # a TOML error names its line
        load_config(path)
