"""The terminal's chip messages without a network: the answer's 91 and scripts, the 0620 script-result advice,
and the chip batch upload (0320 / 205 with 55)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from acqkit.config import AcqsimConfig
from hsm_sim.keys import DEFAULT_TEST_LMK, KeyType, encrypt_under_lmk
from hsm_sim.processor import HsmProcessor
from terminal.chipflow import ReadMode, read_card
from terminal.session import TerminalError, TerminalSession
from terminal.state import TerminalState
from wire.codec import decode_pos_body, encode_pos_body, encode_pos_body_with_mac
from wire.constants import Mti
from wire.fields import Field60, Field61, SignOnKeys
from wire.icc import SCRIPT_ADVICE_TAGS, IssuerAnswer, IssuerScript, arqc_input, parse_icc
from wire.paycrypto import encrypt_key_under, key_check_value, mac_cup_ecb
from wire.posframe import PosFrame
from wire.tlv import parse_tlv

CONFIG = AcqsimConfig.default()
TMK = bytes.fromhex(CONFIG.terminals[0].tmk)
MAK = bytes.fromhex("1C587F1C13924FEFFEDCBA9876543210")
NOW = dt.datetime(2026, 12, 4, 9, 30)
CARD = CONFIG.card("6200001000000003")
SCRIPT = IssuerScript(script_id=bytes.fromhex("11223344"), commands=(bytes.fromhex("8418000008AABBCCDD11223344"),))


def session() -> TerminalSession:
    state = TerminalState(
        terminal_id="10000001",
        merchant_id="898100000000001",
        pik_under_tmk="1A4D672DCA6CB33501E9D8DA9182FC1F",  # PROTOCOL.md §6
        mak_under_tmk="01E9D8DA9182FC1F1FD1B02B237AF9AE",
        signed_on=True,
    )
    return TerminalSession(state, TMK, clock=lambda: NOW)


def issuer_answer(payload: bytes, icc: bytes) -> bytes:
    """The host's 0210 with 55 = ``icc`` and a good MAC."""
    request = PosFrame.parse(payload)
    fields = decode_pos_body(request.body)
    reply = {k: v for k, v in fields.items() if k in ("2", "3", "4", "11", "13", "41", "42", "60")}
    reply |= {"t": "0210", "39": "00", "37": "000000000007", "55": icc.hex().upper()}
    return request.answer(encode_pos_body_with_mac(reply, lambda block: mac_cup_ecb(MAK, block))).to_bytes()


def arpc_from_hsm(values: dict[str, bytes]) -> bytes:
    imk = encrypt_under_lmk(DEFAULT_TEST_LMK, KeyType.MK_AC, bytes.fromhex(CONFIG.imk_ac))
    data = arqc_input(values)
    fields = (
        f"1P1{imk}{len(CARD.pan):02d}{CARD.pan}{CARD.psn}{values['9F36'].hex()}{len(data):03d}{data.hex()}"
        f"{values['9F26'].hex()}3030"
    )
    answer = HsmProcessor(DEFAULT_TEST_LMK).handle(b"0001KQ" + fields.encode()).decode()
    assert answer[6:8] == "00"
    return bytes.fromhex(answer[8:])


def test_scripts_go_in_a_0620_advice_and_the_chip_txn_in_the_batch_upload() -> None:
    pos = session()
    read, chip = read_card(
        CARD, imk=bytes.fromhex(CONFIG.imk_ac), atc=41, mode=ReadMode.CONTACT, amount=500, terminal_id="10000001",
        now=NOW, pin_entered=True,
    )  # fmt: skip
    assert chip is not None
    request = pos.financial("purchase", CARD, amount=500, pin=CARD.pin, read=read)
    answer = IssuerAnswer(arpc=arpc_from_hsm(read.values), arc="00", after=(SCRIPT,))
    outcome = pos.receive("purchase", issuer_answer(request, answer.encode()))
    assert outcome.approved
    completion = chip.complete(host_approved=True, answer=IssuerAnswer.parse(bytes.fromhex(outcome.fields["55"])))
    assert completion.approves and completion.issuer_authenticated and completion.scripts_ran

    advice = decode_pos_body(PosFrame.parse(pos.script_advice(outcome, read, completion)).body)
    assert advice["t"] == Mti.SCRIPT_ADVICE and Field60.parse(advice["60"]).network_code == "951"
    assert Field61.parse(advice["61"]).stan == decode_pos_body(PosFrame.parse(request).body)["11"]
    tags = [tag for tag, _ in parse_tlv(bytes.fromhex(advice["55"]))]
    assert tags == [t for t in SCRIPT_ADVICE_TAGS if t in tags] and parse_icc(bytes.fromhex(advice["55"]))[
        "DF31"
    ] == bytes.fromhex("2011223344")

    frames = pos.batch_uploads()
    chip_upload = decode_pos_body(PosFrame.parse(frames[0]).body)
    assert Field60.parse(chip_upload["60"]).network_code == "205" and chip_upload["22"] == "051"
    assert chip_upload["55"] == decode_pos_body(PosFrame.parse(request).body)["55"]
    assert decode_pos_body(PosFrame.parse(frames[-1]).body)["48"] == "0001"  # the end counts the chip upload


def test_a_failing_chip_falls_back_to_the_stripe() -> None:
    read, chip = read_card(
        CARD, imk=bytes.fromhex(CONFIG.imk_ac), atc=0, mode=ReadMode.CONTACT, amount=1, terminal_id="10000001",
        now=NOW, pin_entered=False, force_chip_failure=True,
    )  # fmt: skip
    assert chip is None and read.mode is ReadMode.FALLBACK
    fields = decode_pos_body(PosFrame.parse(session().financial("purchase", CARD, amount=1, read=read)).body)
    assert fields["22"] == "802" and Field60.parse(fields["60"]).extra == "62" and "55" not in fields


def test_a_004_sign_on_keeps_the_tdk_after_checking_its_kcv() -> None:
    pos = session()
    request = pos.sign_on(with_tdk=True)
    assert Field60.parse(decode_pos_body(PosFrame.parse(request).body)["60"]).network_code == "004"
    tdk = bytes.fromhex("0123456789ABCDEF1C587F1C13924FEF")
    keys = SignOnKeys(
        pik_under_tmk="1A4D672DCA6CB33501E9D8DA9182FC1F", pik_kcv="164D70B9",
        mak_under_tmk="01E9D8DA9182FC1F1FD1B02B237AF9AE", mak_kcv="76FE1391",
        tdk_under_tmk=encrypt_key_under(TMK, tdk).hex().upper(), tdk_kcv=key_check_value(tdk, 4).hex().upper(),
    )  # fmt: skip

    def answer(with_keys: SignOnKeys) -> bytes:
        frame = PosFrame.parse(request)
        reply = {"t": "0810", "11": "000001", "39": "00", "41": "10000001", "60": "00000001004"}
        reply["62"] = with_keys.encode()
        return frame.answer(encode_pos_body(reply)).to_bytes()

    assert pos.receive("sign_on", answer(keys)).approved
    assert pos.state.tdk_under_tmk == keys.tdk_under_tmk
    bad = dataclasses.replace(keys, tdk_kcv="00000000")
    with pytest.raises(TerminalError, match="check value"):
        session().receive("sign_on", answer(bad))
