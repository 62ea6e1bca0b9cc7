"""Tracks encrypted under the TDK end to end (PROTOCOL.md §8), without a network (the real HSM processor, ledger
engine and journal): a terminal signed on with 004 encrypts its tracks and sets 53; the front-end has the HSM
decrypt them (M2 under the session's TDK) before it reads the PVV; what does not decrypt to a track is 30, and
nothing posts."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from frontend.effects import DecryptTrackBlock, Effect
from frontend.journal import Journal
from tests.frontend.harness import Harness
from wire.codec import decode_pos_body
from wire.constants import SECURITY_CONTROL_FORMAT0_TDES_TDK
from wire.posframe import PosFrame

GOOD = "6200001000000003"


@pytest.fixture
def fe(tmp_path: Path) -> Harness:
    fe = Harness(tmp_path)
    assert fe.exchange("sign_on", fe.terminal.sign_on(with_tdk=True)).approved
    return fe


def balance(fe: Harness, pan: str) -> int:
    state = fe.ledger.state
    return int(state.accounts[state.cards[pan].account_id].balance)


def record_m2(fe: Harness) -> list[DecryptTrackBlock]:
    seen: list[DecryptTrackBlock] = []
    real = fe.answer

    def answer(effect: Effect) -> Any:
        if isinstance(effect, DecryptTrackBlock):
            seen.append(effect)
        return real(effect)

    fe.answer = answer  # type: ignore[method-assign]
    return seen


def code_of(answer: bytes) -> str:
    return decode_pos_body(PosFrame.parse(answer).body)["39"]


def test_a_tdk_terminal_sends_its_track_encrypted_and_the_hsm_opens_it(fe: Harness) -> None:
    card = fe.config.card(GOOD)
    before = balance(fe, GOOD)
    m2 = record_m2(fe)
    _, answer = fe.send(fe.terminal.financial("purchase", card, amount=250, pin=card.pin))
    sent = decode_pos_body(fe.last_request)
    assert sent["53"] == SECURITY_CONTROL_FORMAT0_TDES_TDK
    assert sent["35"] != card.track2 and sent["35"][:16] == card.pan  # the head stays clear, the block does not
    assert code_of(answer) == "00" and balance(fe, GOOD) == before - 250
    assert len(m2) == 1 and len(m2[0].block) == 8  # one M2 per track: only the encrypted block goes to the HSM
    # the PVV was read from the decrypted track: a wrong PIN is still caught
    _, wrong = fe.send(fe.terminal.financial("purchase", card, amount=250, pin="000000"))
    assert code_of(wrong) == "55" and balance(fe, GOOD) == before - 250


def test_the_reversal_of_a_tdk_purchase_is_encrypted_afresh_and_undoes_it(fe: Harness) -> None:
    card = fe.config.card(GOOD)
    before = balance(fe, GOOD)
    fe.send(fe.terminal.financial("purchase", card, amount=120, pin=card.pin))
    assert "35" in fe.terminal.state.pending_reversal.fields  # type: ignore[union-attr]
    _, answer = fe.send(fe.terminal.reversal_due() or b"")
    assert decode_pos_body(fe.last_request)["53"] == SECURITY_CONTROL_FORMAT0_TDES_TDK
    assert code_of(answer) == "00" and balance(fe, GOOD) == before


def test_a_block_that_does_not_decrypt_to_a_track_is_30_and_nothing_posts(
    fe: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    # garbage in the block: what the HSM gives back holds hex digits a track cannot hold
    card = dataclasses.replace(fe.config.card(GOOD), service_code="A0B")
    before = balance(fe, GOOD)
    _, answer = fe.send(fe.terminal.financial("purchase", card, amount=100, pin=card.pin))
    assert code_of(answer) == "30" and balance(fe, GOOD) == before
    assert "field 35 does not decrypt to a track (wrong TDK?)" in caplog.text
    assert GOOD not in caplog.text


def test_a_wrong_tdk_never_posts(fe: Harness) -> None:
    card = fe.config.card(GOOD)
    before = balance(fe, GOOD)
    fe.terminal.state.tdk_under_tmk = fe.terminal.state.pik_under_tmk  # a key the front-end's session does not hold
    _, answer = fe.send(fe.terminal.financial("purchase", card, amount=100, pin=card.pin))
    # almost always 30 (the block decrypts to hex digits); a block that happened to decrypt to digits would carry
    # a wrong PVV and be refused by the PIN check
    assert code_of(answer) in ("30", "55") and balance(fe, GOOD) == before


def test_encrypted_tracks_from_a_003_session_are_30(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    fe = Harness(tmp_path).signed_on()  # 003: the session holds no TDK
    card = fe.config.card(GOOD)
    fe.terminal.state.tdk_under_tmk = fe.terminal.state.pik_under_tmk
    _, answer = fe.send(fe.terminal.financial("purchase", card, amount=100, pin=card.pin))
    assert code_of(answer) == "30"
    assert "the session has no TDK" in caplog.text


def test_the_session_tdk_survives_a_restart(fe: Harness, tmp_path: Path) -> None:
    terminal_id = fe.terminal.state.terminal_id
    held = fe.journal.session(terminal_id)
    assert held is not None and held.tdk is not None
    fe.journal.close()
    reopened = Journal(tmp_path / "journal.sqlite3")
    assert reopened.session(terminal_id) == held
    reopened.close()
