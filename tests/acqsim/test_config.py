from __future__ import annotations

from pathlib import Path

import pytest

from acqsim.config import AcqsimConfig, ConfigError, Endpoint, load_config
from terminal.cards import luhn_valid


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
