"""The terminal's message rules without a network."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from acqkit.config import AcqsimConfig
from acqkit.datakey import DataKeyError
from terminal.receipt import ReceiptData, html_receipt, text_receipt
from terminal.session import TerminalSession
from terminal.state import MAX_REVERSAL_TRIES, TerminalState, load_state, save_state, storage_key
from wire.codec import decode_pos_body, encode_pos_body_with_mac, pos_mac_block
from wire.constants import Mti
from wire.paycrypto import decrypt_pin, mac_cup_ecb
from wire.posframe import PosFrame

CONFIG = AcqsimConfig.default()
TMK = bytes.fromhex(CONFIG.terminals[0].tmk)
PIK_UNDER_TMK = "1A4D672DCA6CB33501E9D8DA9182FC1F"  # PROTOCOL.md §6
MAK_UNDER_TMK = "01E9D8DA9182FC1F1FD1B02B237AF9AE"
PIK = bytes.fromhex("0123456789ABCDEF1C587F1C13924FEF")
MAK = bytes.fromhex("1C587F1C13924FEFFEDCBA9876543210")

KEY = storage_key(TMK)


def session() -> TerminalSession:
    state = TerminalState(
        terminal_id="10000001",
        merchant_id="898100000000001",
        pik_under_tmk=PIK_UNDER_TMK,
        mak_under_tmk=MAK_UNDER_TMK,
        signed_on=True,
    )
    return TerminalSession(state, TMK, clock=lambda: dt.datetime(2026, 11, 24, 9, 30))


def fields_of(payload: bytes) -> dict[str, str]:
    return decode_pos_body(PosFrame.parse(payload).body)


def answer_to(payload: bytes, code: str = "00", *, mac_key: bytes = MAK) -> bytes:
    request = PosFrame.parse(payload)
    fields = decode_pos_body(request.body)
    reply = {k: v for k, v in fields.items() if k in ("2", "3", "4", "11", "41", "42", "60")}
    reply.update(
        {
            "t": Mti(fields["t"]).value[:2] + str(int(fields["t"][2]) + 1) + fields["t"][3],
            "39": code,
            "37": "000000000001",
        }
    )
    body = encode_pos_body_with_mac(reply, lambda block: mac_cup_ecb(mac_key, block))
    return request.answer(body).to_bytes()


def test_purchase_carries_pin_block_under_pik_and_a_mac() -> None:
    pos = session()
    card = CONFIG.cards[0]
    payload = pos.financial("purchase", card, amount=1234, pin=card.pin)
    fields = fields_of(payload)
    assert fields["t"] == "0200" and fields["3"] == "000000" and fields["22"] == "021" and fields["25"] == "00"
    assert fields["60"][:2] == "22" and fields["53"] == "2600000000000000"
    assert decrypt_pin(PIK, bytes.fromhex(fields["52"]), card.pan) == card.pin
    body = PosFrame.parse(payload).body
    assert body[-8:] == mac_cup_ecb(MAK, pos_mac_block(body))


def test_stan_wraps_and_reversal_is_stored_before_sending() -> None:
    pos = session()
    pos.state.stan = 999_999
    card = CONFIG.cards[0]
    payload = pos.financial("purchase", card, amount=10, pin=card.pin)
    assert fields_of(payload)["11"] == "000001"
    pending = pos.state.pending_reversal
    assert pending is not None and pending.fields["t"] == "0400" and pending.fields["11"] == "000001"
    assert pending.fields["39"] == "98"


def test_trusted_answer_clears_reversal_tampered_answer_marks_a0() -> None:
    pos = session()
    card = CONFIG.cards[0]
    payload = pos.financial("purchase", card, amount=10, pin=card.pin)
    bad = bytearray(answer_to(payload))
    bad[-1] ^= 1
    outcome = pos.receive("purchase", bytes(bad))
    assert not outcome.trusted and not outcome.approved
    assert pos.state.pending_reversal is not None and pos.state.pending_reversal.fields["39"] == "A0"
    payload = pos.financial("purchase", card, amount=10, pin=card.pin)
    assert pos.receive("purchase", answer_to(payload)).approved
    assert pos.state.pending_reversal is None
    assert [t.amount for t in pos.state.batch_txns] == [10]


def test_reversal_ends_on_00_12_25_and_is_kept_after_three_tries() -> None:
    for code, cleared in (("00", True), ("12", True), ("25", True), ("96", False)):
        pos = session()
        pos.financial("purchase", CONFIG.cards[0], amount=10, pin="123456")
        due = pos.reversal_due()
        assert due is not None and fields_of(due)["t"] == "0400"
        pos.receive("reversal", answer_to(due, code))
        assert (pos.state.pending_reversal is None) is cleared
    pos = session()
    pos.financial("purchase", CONFIG.cards[0], amount=10, pin="123456")
    for _ in range(MAX_REVERSAL_TRIES):
        assert pos.reversal_due() is not None
        pos.reversal_failed()
    assert pos.state.pending_reversal is None and len(pos.state.kept_reversals) == 1


def test_settlement_totals_and_batch_upload() -> None:
    pos = session()
    card = CONFIG.cards[0]
    for amount in (100, 250):
        payload = pos.financial("purchase", card, amount=amount, pin=card.pin)
        pos.receive("purchase", answer_to(payload))
    settlement = fields_of(pos.settlement())
    assert settlement["48"][:15] == "000000000350002" and settlement["60"][8:11] == "201"
    uploads = pos.batch_uploads()
    assert len(uploads) == 2
    assert fields_of(uploads[0])["48"][:2] == "02" and fields_of(uploads[-1])["48"] == "0002"


def test_state_round_trip_holds_no_clear_key_nor_card_data(tmp_path: Path) -> None:
    pos = session()
    card = CONFIG.cards[0]
    pos.receive("purchase", answer_to(pos.financial("purchase", card, amount=10, pin="123456")))
    pos.financial("purchase", card, amount=20, pin="123456")  # unanswered yet: a reversal is pending
    assert pos.state.pending_reversal is not None and pos.state.batch_txns
    save_state(tmp_path, pos.state, key=KEY)
    text = next(tmp_path.glob("*.json")).read_text()
    for secret in (PIK.hex().upper(), MAK.hex().upper(), TMK.hex().upper(), "123456", card.pan, card.track2[17:]):
        assert secret not in text.upper()
    again = load_state(tmp_path, "10000001", "898100000000001", key=KEY)
    assert again.pending_reversal == pos.state.pending_reversal and again.stan == pos.state.stan
    assert again.batch_txns == pos.state.batch_txns
    with pytest.raises(DataKeyError):  # another terminal's key cannot open it
        load_state(tmp_path, "10000001", "898100000000001", key=storage_key(bytes(16)))


def test_receipts_mask_the_pan_and_escape_html() -> None:
    data = ReceiptData(
        merchant_name="<b>SHOP</b>",
        merchant_id="898100000000001",
        terminal_id="10000001",
        operator="001",
        pan="6200001000000003",
        kind="purchase",
        batch="000001",
        stan="000002",
        rrn="000000000001",
        auth_code="123456",
        date="1124",
        time="093000",
        amount=1234,
    )
    text = text_receipt(data)
    assert "620000******0003" in text and "6200001000000003" not in text
    assert "MERCHANT COPY" in text and "CARDHOLDER COPY" in text and "RMB 12.34" in text
    page = html_receipt(data)
    assert "&lt;b&gt;SHOP&lt;/b&gt;" in page and "<b>SHOP" not in page and "6200001000000003" not in page
