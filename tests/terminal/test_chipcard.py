"""The simulated chip card against the real HSM core: its ARQC verifies with KQ, the HSM's ARPC satisfies it,
and every way the card can say no."""

from __future__ import annotations

import pytest

from hsm_sim.keys import DEFAULT_TEST_LMK, KeyType, encrypt_under_lmk
from hsm_sim.processor import HsmProcessor
from terminal.chipcard import (
    CID_AAC,
    CID_ARQC,
    CID_TC,
    TVR_ISSUER_AUTH_FAILED,
    TVR_SCRIPT_FAILED_AFTER,
    ChipBehaviour,
    ChipCard,
    ChipReadError,
    TerminalData,
)
from wire.icc import REQUEST_REQUIRED, REQUEST_TAGS, IssuerAnswer, IssuerScript, arqc_input, build_icc, parse_icc
from wire.paycrypto import with_odd_parity

IMK = with_odd_parity(bytes.fromhex("F0C34A8124CEE0A91A0B034AA97D6EAC"))
PAN, PSN = "6200001000000003", "01"
TERMINAL = TerminalData(amount=1234, date="261204", unpredictable_number=bytes.fromhex("1E78EEBC"))


def hsm_arpc(values: dict[str, bytes], arc: str = "00") -> str:
    """KQ mode 1 at the real HSM core: the answer (error code and ARPC)."""
    fields = (
        f"1P1{encrypt_under_lmk(DEFAULT_TEST_LMK, KeyType.MK_AC, IMK)}{len(PAN):02d}{PAN}{PSN}"
        f"{values['9F36'].hex()}{len(arqc_input(values)):03d}{arqc_input(values).hex()}{values['9F26'].hex()}"
        f"{arc.encode().hex()}"
    )
    return HsmProcessor(DEFAULT_TEST_LMK).handle(b"0001KQ" + fields.encode()).decode()[6:]


def card(atc: int = 7, behaviour: ChipBehaviour = ChipBehaviour.OK) -> ChipCard:
    return ChipCard.personalise(imk=IMK, pan=PAN, psn=PSN, atc=atc, behaviour=behaviour)


def test_the_arqc_verifies_at_the_hsm_and_its_arpc_makes_the_card_approve() -> None:
    chip = card()
    values = chip.first_generate_ac(TERMINAL)
    assert chip.atc == 8 and values["9F36"] == b"\x00\x08" and values["9F27"][0] == CID_ARQC
    field_55 = build_icc(values, REQUEST_TAGS)
    assert parse_icc(field_55, REQUEST_REQUIRED) == values  # everything the request needs, in order
    answer = hsm_arpc(values)
    assert answer[:2] == "00"
    done = chip.complete(host_approved=True, answer=IssuerAnswer(arpc=bytes.fromhex(answer[2:]), arc="00"))
    assert done.approves and done.issuer_authenticated and done.cid == CID_TC and not done.scripts_ran
    assert PAN not in repr(chip)


def test_a_tampered_arqc_fails_at_the_hsm() -> None:
    values = card().first_generate_ac(TERMINAL)
    values["9F02"] = bytes.fromhex("000000009999")  # the amount changed after the card signed it
    assert hsm_arpc(values) == "01"


def test_a_wrong_arpc_makes_the_card_decline_and_flags_the_tvr() -> None:
    chip = card()
    chip.first_generate_ac(TERMINAL)
    done = chip.complete(host_approved=True, answer=IssuerAnswer(arpc=bytes(8), arc="00"))
    assert not done.approves and done.issuer_authenticated is False and done.cid == CID_AAC
    assert done.tvr[4] & TVR_ISSUER_AUTH_FAILED


def test_a_card_configured_to_decline_declines_after_approval() -> None:
    chip = card(behaviour=ChipBehaviour.DECLINES)
    values = chip.first_generate_ac(TERMINAL)
    answer = hsm_arpc(values)
    done = chip.complete(host_approved=True, answer=IssuerAnswer(arpc=bytes.fromhex(answer[2:]), arc="00"))
    assert done.issuer_authenticated and not done.approves


def test_scripts_run_and_report_in_df31() -> None:
    chip = card()
    values = chip.first_generate_ac(TERMINAL)
    good = IssuerScript(script_id=bytes.fromhex("00000001"), commands=(bytes.fromhex("841E000008AABBCCDD11223344"),))
    bad = IssuerScript(script_id=bytes.fromhex("00000002"), commands=(bytes.fromhex("841E000008"), b"\x00\xa4"))
    arpc = bytes.fromhex(hsm_arpc(values)[2:])
    done = chip.complete(host_approved=True, answer=IssuerAnswer(arpc=arpc, arc="00", before=(good,), after=(bad,)))
    assert done.approves
    assert done.script_results.hex() == "2000000001" + "1200000002"
    assert done.tvr[4] & TVR_SCRIPT_FAILED_AFTER


@pytest.mark.parametrize("behaviour", [ChipBehaviour.FAILS, ChipBehaviour.NONE])
def test_a_failing_chip_raises_and_keeps_its_atc(behaviour: ChipBehaviour) -> None:
    chip = card(behaviour=behaviour)
    with pytest.raises(ChipReadError):
        chip.first_generate_ac(TERMINAL)
    assert chip.atc == 7


def test_an_exhausted_atc_is_refused() -> None:
    with pytest.raises(ChipReadError):
        card(atc=0xFFFF).first_generate_ac(TERMINAL)


def test_no_91_in_the_answer_leaves_the_verdict_to_the_host() -> None:
    chip = card()
    chip.first_generate_ac(TERMINAL)
    assert chip.complete(host_approved=True, answer=None).approves
    assert not chip.complete(host_approved=False, answer=None).approves
