"""The terminal against PROTOCOL.md §6 vectors: the PIN block and the sign-on key check values."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from acqkit.config import AcqsimConfig
from terminal.session import TerminalError, TerminalSession
from terminal.state import TerminalState
from wire.codec import decode_pos_body, encode_pos_body
from wire.posframe import PosFrame

CONFIG = AcqsimConfig.default()
TMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")  # PROTOCOL.md §6
FIELD62_GOOD = "1A4D672DCA6CB33501E9D8DA9182FC1F" + "164D70B9" + "01E9D8DA9182FC1F1FD1B02B237AF9AE" + "76FE1391"


def fresh_session(*, pik: str | None = None, mak: str | None = None) -> TerminalSession:
    base = TerminalState(
        terminal_id="10000001",
        merchant_id="898100000000001",
        pik_under_tmk=pik,
        mak_under_tmk=mak,
        signed_on=pik is not None,
    )
    return TerminalSession(base, TMK, clock=lambda: dt.datetime(2026, 11, 24, 9, 30))


def sign_on_answer(request: bytes, field62: str) -> bytes:
    frame = PosFrame.parse(request)
    fields = decode_pos_body(frame.body)
    reply = {k: v for k, v in fields.items() if k in ("11", "41", "42")}
    reply.update({"t": "0810", "39": "00", "37": "000000000001", "60": "00000042003", "62": field62})
    return frame.answer(encode_pos_body(reply)).to_bytes()


def test_pin_block_of_the_published_vector() -> None:
    pos = fresh_session(pik=FIELD62_GOOD[:32], mak=FIELD62_GOOD[40:72])
    card = dataclasses.replace(CONFIG.cards[0], pan="5544332211009966", pin="1234")
    fields = decode_pos_body(PosFrame.parse(pos.financial("purchase", card, amount=100, pin="1234")).body)
    assert fields["52"] == "AB7374D801F4A390"


def test_sign_on_keeps_keys_under_tmk_and_takes_the_batch() -> None:
    pos = fresh_session()
    outcome = pos.receive("sign_on", sign_on_answer(pos.sign_on(), FIELD62_GOOD))
    assert outcome.approved
    assert pos.state.pik_under_tmk == FIELD62_GOOD[:32] and pos.state.signed_on
    assert pos.state.batch == "000042"


def test_sign_on_with_a_wrong_kcv_keeps_no_key() -> None:
    pos = fresh_session()
    bad = FIELD62_GOOD[:-8] + "00000000"
    with pytest.raises(TerminalError, match="check value"):
        pos.receive("sign_on", sign_on_answer(pos.sign_on(), bad))
    assert pos.state.mak_under_tmk is None and not pos.state.signed_on
