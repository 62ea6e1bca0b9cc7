"""Virtual cards: Luhn, PVV, issuing into a configuration and a ledger store."""

from __future__ import annotations

import tomllib
from pathlib import Path

from acqkit.config import TEST_PVK, AcqsimConfig, config_from_mapping
from acqsim.cli import main
from core_ledger.setup import open_store
from terminal.cards import issue_cards, luhn_check_digit, luhn_valid
from wire.paycrypto import visa_pvv


def test_luhn() -> None:
    assert luhn_check_digit("620000100000000") == "3"
    assert luhn_valid("6200001000000003") and not luhn_valid("6200001000000004")
    assert all(luhn_valid(card.pan) for card in AcqsimConfig.default().cards)


def test_issued_cards_are_valid_and_their_pvv_checks() -> None:
    pvk = bytes.fromhex(TEST_PVK)
    cards = list(issue_cards(20, pvk=pvk, balance=100))
    assert len({c.pan for c in cards}) == 20
    for card in cards:
        assert luhn_valid(card.pan) and len(card.pin) == 6
        assert visa_pvv(pvk, card.pan, card.pvki, card.pin) == card.pvv
        assert card.track2 == f"{card.pan}={card.expiry}201{card.pvki}{card.pvv}00000"


def test_cards_issue_writes_toml_and_opens_accounts(tmp_path: Path) -> None:
    out, db = tmp_path / "cards.toml", tmp_path / "ledger.sqlite3"
    assert (
        main(["cards", "issue", "--count", "3", "--balance", "12.50", "--out", str(out), "--ledger-db", str(db)]) == 0
    )
    config = config_from_mapping(tomllib.loads(out.read_text()))
    assert len(config.cards) == 3 and all(c.balance == 1250 for c in config.cards)
    store = open_store(str(db))
    state = store.load()
    store.close()
    for card in config.cards:
        assert state.accounts[state.cards[card.pan].account_id].balance == 1250
