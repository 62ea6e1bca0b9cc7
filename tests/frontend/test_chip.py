"""The front-end's chip and MPOS rules, driven without a network (the real HSM processor, ledger engine and
journal): the ARQC verified before the ledger, the ATC replay check, 91 and scripts in the answer, the 0620
advice, the 004 sign-on's TDK, and MPOS requests through the DUKPT reader — with every bad input's code, its
log line, and nothing posted."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from frontend.effects import CounterVerdict
from frontend.journal import Journal
from terminal.chipcard import ChipCard
from terminal.chipflow import CardRead, ReadMode, read_card
from terminal.reader import DukptScheme, inject
from terminal.session import Outcome
from tests.frontend.harness import NOW, Harness
from wire.codec import decode_pos_body
from wire.dukpt import SCHEME_AES, SCHEME_TDES
from wire.icc import REQUEST_TAGS, SCRIPT_ADVICE_TAGS, IssuerAnswer, build_icc
from wire.posframe import PosFrame
from wire.tlv import parse_tlv

GOOD, SCRIPTED = "6200001000000003", "6200004000000049"


@pytest.fixture
def fe(tmp_path: Path) -> Harness:
    return Harness(tmp_path).signed_on()


def balance(fe: Harness, pan: str) -> int:
    state = fe.ledger.state
    return int(state.accounts[state.cards[pan].account_id].balance)


def chip_read(fe: Harness, pan: str, *, atc: int = 0, amount: int = 500) -> tuple[CardRead, ChipCard]:
    read, chip = read_card(
        fe.config.card(pan), imk=bytes.fromhex(fe.config.imk_ac), atc=atc, mode=ReadMode.CONTACT, amount=amount,
        terminal_id="10000001", now=NOW, pin_entered=True,
    )  # fmt: skip
    assert chip is not None
    return read, chip


def chip_purchase(fe: Harness, pan: str, read: CardRead, amount: int = 500) -> tuple[str, dict[str, str]]:
    card = fe.config.card(pan)
    _, answer = fe.send(fe.terminal.financial("purchase", card, amount=amount, pin=card.pin, read=read))
    fields = decode_pos_body(PosFrame.parse(answer).body)
    return fields["39"], fields


def test_a_chip_purchase_is_answered_with_an_arpc_the_card_accepts(fe: Harness) -> None:
    before = balance(fe, GOOD)
    read, chip = chip_read(fe, GOOD)
    code, fields = chip_purchase(fe, GOOD, read)
    assert code == "00" and balance(fe, GOOD) == before - 500
    answer = IssuerAnswer.parse(bytes.fromhex(fields["55"]))
    assert answer.arc == "00" and not answer.after
    done = chip.complete(host_approved=True, answer=answer)
    assert done.issuer_authenticated and done.approves
    assert "2" not in fields or fields["2"] == GOOD  # the answer echoes what the request carried


def test_a_wrong_arqc_is_declined_05_and_nothing_posts(fe: Harness, caplog: pytest.LogCaptureFixture) -> None:
    before = balance(fe, GOOD)
    read, _ = chip_read(fe, GOOD)
    forged = {**read.values, "9F02": bytes.fromhex("000000000001")}  # the amount changed after the card signed
    code, fields = chip_purchase(fe, GOOD, dataclasses.replace(read, icc=build_icc(forged, REQUEST_TAGS)), amount=1)
    assert code == "05" and "55" not in fields and balance(fe, GOOD) == before
    assert "ARQC does not verify" in caplog.text and "620000******0003" in caplog.text and GOOD not in caplog.text


def test_a_replayed_or_far_behind_atc_is_refused_94(fe: Harness, caplog: pytest.LogCaptureFixture) -> None:
    before = balance(fe, GOOD)
    first, _ = chip_read(fe, GOOD, atc=40)
    assert chip_purchase(fe, GOOD, first)[0] == "00"
    again, _ = chip_read(fe, GOOD, atc=40)  # the same ATC (41) again, with a fresh ARQC
    assert chip_purchase(fe, GOOD, again)[0] == "94"
    behind, _ = chip_read(fe, GOOD, atc=3)  # far behind the highest seen
    assert chip_purchase(fe, GOOD, behind)[0] == "94"
    slightly, _ = chip_read(fe, GOOD, atc=35)  # a little out of order: accepted once
    assert chip_purchase(fe, GOOD, slightly)[0] == "00"
    assert balance(fe, GOOD) == before - 1000
    assert "ATC 41 repeated" in caplog.text and "ATC 4 too old" in caplog.text


@pytest.mark.parametrize("cut", [1, 3, 9])
def test_a_truncated_field_55_is_a_format_error(fe: Harness, cut: int, caplog: pytest.LogCaptureFixture) -> None:
    read, _ = chip_read(fe, GOOD)
    before = balance(fe, GOOD)
    assert chip_purchase(fe, GOOD, dataclasses.replace(read, icc=read.icc[:-cut]))[0] == "30"
    assert balance(fe, GOOD) == before and "field 55 refused" in caplog.text


def test_a_card_with_a_script_gets_it_in_72_and_its_advice_is_acknowledged(fe: Harness) -> None:
    read, chip = chip_read(fe, SCRIPTED, amount=100)
    code, fields = chip_purchase(fe, SCRIPTED, read, amount=100)
    answer = IssuerAnswer.parse(bytes.fromhex(fields["55"]))
    assert code == "00" and answer.after[0].commands == (bytes.fromhex(fe.config.card(SCRIPTED).script),)
    done = chip.complete(host_approved=True, answer=answer)
    assert done.approves and done.script_results.hex() == "2000000001"
    outcome = Outcome(kind="purchase", response_code=code, fields=fields, trusted=True)
    advice = fe.terminal.script_advice(outcome, read, done)
    _, reply = fe.send(advice)
    assert decode_pos_body(PosFrame.parse(reply).body)["39"] == "00"


def test_a_004_sign_on_sends_a_tdk_the_terminal_checks(tmp_path: Path) -> None:
    fe = Harness(tmp_path)
    outcome = fe.exchange("sign_on", fe.terminal.sign_on(with_tdk=True))
    assert outcome.approved and len(bytes.fromhex(outcome.fields["62"])) == 60
    assert fe.terminal.state.tdk_under_tmk is not None


def mpos_frame(fe: Harness, pin: str, *, ksn: str = "FFFF9876543210E00000", counter: int | None = None) -> bytes:
    card = fe.config.card(GOOD)
    reader = inject(bytes.fromhex(fe.config.bdk), bytes.fromhex(ksn))
    output = reader.encrypt(pan=card.pan, track2=card.track2, pin=pin, counter=counter)
    return fe.terminal.dukpt_financial("purchase", output, scheme=SCHEME_TDES, amount=300)


def test_an_mpos_purchase_is_verified_from_the_reader_output_alone(fe: Harness) -> None:
    before = balance(fe, GOOD)
    _, answer = fe.send(mpos_frame(fe, fe.config.card(GOOD).pin))
    fields = decode_pos_body(PosFrame.parse(answer).body)
    assert fields["39"] == "00" and "2" not in fields and "35" not in fields  # no card number goes back
    assert balance(fe, GOOD) == before - 300
    _, wrong = fe.send(mpos_frame(fe, "000000", counter=2))
    assert decode_pos_body(PosFrame.parse(wrong).body)["39"] == "55"  # GQ: the DUKPT PIN against the PVV


def test_an_unknown_ksn_and_a_reused_counter_are_refused(fe: Harness, caplog: pytest.LogCaptureFixture) -> None:
    before = balance(fe, GOOD)
    _, unknown = fe.send(mpos_frame(fe, "123456", ksn="AAAA9876543210E00000"))
    assert decode_pos_body(PosFrame.parse(unknown).body)["39"] == "58"
    assert "unknown KSN (key set AAAA987654 has no BDK)" in caplog.text
    assert decode_pos_body(PosFrame.parse(fe.send(mpos_frame(fe, "123456", counter=5))[1]).body)["39"] == "00"
    reused = fe.send(mpos_frame(fe, "123456", counter=5))[1]  # the same reader counter again
    assert decode_pos_body(PosFrame.parse(reused).body)["39"] == "94"
    assert "DUKPT counter repeated" in caplog.text
    assert balance(fe, GOOD) == before - 300


@given(st.lists(st.integers(0, 200), max_size=40))
def test_the_counter_window_never_accepts_a_value_twice(values: list[int]) -> None:
    journal = Journal(":memory:")
    seen: set[int] = set()
    high = -1
    for value in values:
        verdict = journal.use_counter("atc", "card", value, 8)
        expected_fresh = value not in seen and value > high - 9
        assert (verdict is CounterVerdict.FRESH) == expected_fresh
        if verdict is CounterVerdict.FRESH:
            seen.add(value)
            high = max(high, value)
    journal.close()


def test_logs_name_no_card(fe: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    read, _ = chip_read(fe, GOOD)
    chip_purchase(fe, GOOD, dataclasses.replace(read, icc=read.icc[:-1]))
    assert GOOD not in caplog.text


def test_a_chip_batch_upload_is_acknowledged_and_a_bad_script_advice_is_a_format_error(fe: Harness) -> None:
    read, chip = chip_read(fe, GOOD)
    card = fe.config.card(GOOD)
    _, answer = fe.send(fe.terminal.financial("purchase", card, amount=500, pin=card.pin, read=read))
    outcome = fe.terminal.receive("purchase", answer)  # the approval joins the terminal's batch, with its 55
    assert outcome.approved
    chip_upload = fe.terminal.batch_uploads()[0]
    assert decode_pos_body(PosFrame.parse(chip_upload).body)["60"][8:11] == "205"
    assert decode_pos_body(PosFrame.parse(fe.send(chip_upload)[1]).body)["39"] == "00"
    done = chip.complete(host_approved=True, answer=IssuerAnswer.parse(bytes.fromhex(outcome.fields["55"])))
    ran = dataclasses.replace(done, script_results=bytes.fromhex("2000000001"))
    good = decode_pos_body(PosFrame.parse(fe.terminal.script_advice(outcome, read, ran)).body)
    without_results = {tag: value for tag, value in parse_tlv(bytes.fromhex(good["55"])) if tag != "DF31"}
    good["55"] = build_icc(without_results, SCRIPT_ADVICE_TAGS).hex().upper()
    good.pop("64")
    bad = fe.terminal._frame(good, mac=True)  # a well-MACed advice whose 55 lacks the script results
    assert decode_pos_body(PosFrame.parse(fe.send(bad)[1]).body)["39"] == "30"


def test_a_ledger_decline_carries_an_arpc_for_its_own_code_and_no_script(fe: Harness) -> None:
    read, chip = chip_read(fe, SCRIPTED, amount=5_000)  # balance 10.00: the ledger declines 51
    code, fields = chip_purchase(fe, SCRIPTED, read, amount=5_000)
    answer = IssuerAnswer.parse(bytes.fromhex(fields["55"]))
    assert code == "51" and answer.arc == "51" and not answer.after
    done = chip.complete(host_approved=False, answer=answer)
    assert done.issuer_authenticated and not done.approves


def test_an_aes_reader_is_verified_and_its_reused_counter_refused(fe: Harness) -> None:
    card = fe.config.card(GOOD)
    before = balance(fe, GOOD)
    reader = inject(bytes.fromhex(fe.config.bdk), bytes.fromhex("FFFF987654000002"), DukptScheme.AES)

    def aes_frame(pin: str, counter: int) -> bytes:
        output = reader.encrypt(pan=card.pan, track2=card.track2, pin=pin, counter=counter)
        return fe.terminal.dukpt_financial("purchase", output, scheme=SCHEME_AES, amount=300)

    assert decode_pos_body(PosFrame.parse(fe.send(aes_frame(card.pin, 3))[1]).body)["39"] == "00"
    reader.counter = 0  # a reader made to reuse counter 3
    assert decode_pos_body(PosFrame.parse(fe.send(aes_frame(card.pin, 3))[1]).body)["39"] == "94"
    assert decode_pos_body(PosFrame.parse(fe.send(aes_frame("000000", 4))[1]).body)["39"] == "55"
    assert balance(fe, GOOD) == before - 300
