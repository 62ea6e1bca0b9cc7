"""The terminal's chip transactions over the real pipeline (terminal → NAC → front-end → HSM → ledger):
contact, contactless, fallback, the card declining after approval (reversal with its 55), and the ATC kept
across runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from acqkit.config import AcqsimConfig
from acqsim.pipeline import running_pipeline
from terminal.chipflow import ReadMode
from terminal.pos import PosTerminal
from terminal.reader import DukptScheme
from terminal.state import state_path
from wire.codec import decode_pos_body
from wire.dukpt import SCHEME_AES, DukptTrackData
from wire.fields import Field60
from wire.icc import REQUEST_REQUIRED, REVERSAL_TAGS, parse_icc
from wire.posframe import PosFrame
from wire.tlv import parse_tlv

pytestmark = pytest.mark.anyio

GOOD, FAILS, DECLINES = "6200001000000003", "6200001000000011", "62000060000000061"
SCRIPTED = "6200004000000049"


async def test_chip_purchases_through_the_pipeline(tmp_path: Path) -> None:
    config = AcqsimConfig.default(data_dir=tmp_path)
    good, failing, declining = config.card(GOOD), config.card(FAILS), config.card(DECLINES)
    async with running_pipeline(config) as pipeline:
        async with PosTerminal(config, "10000001", nac=pipeline.nac) as pos:
            sent: list[dict[str, str]] = []
            real_send = pos._send

            async def recording_send(payload: bytes) -> bytes | None:
                sent.append(decode_pos_body(PosFrame.parse(payload).body))
                return await real_send(payload)

            pos._send = recording_send  # type: ignore[method-assign]
            contact = await pos.card_financial("purchase", good, mode=ReadMode.CONTACT, amount=1234, pin=good.pin)
            assert contact is not None and contact.approved and not contact.card_declined
            assert contact.issuer_authenticated  # the front-end's 91 (ARPC from the HSM) satisfied the card
            request = sent[-1]
            assert request["22"] == "051" and request["23"] == "001" and Field60.parse(request["60"]).extra == "60"
            values = parse_icc(bytes.fromhex(request["55"]), REQUEST_REQUIRED)
            assert values["9F36"] == b"\x00\x01" and values["9F02"] == bytes.fromhex("000000001234")

            tap = await pos.card_financial("purchase", good, mode=ReadMode.CONTACTLESS, amount=100)
            assert tap is not None and tap.approved
            assert sent[-1]["22"] == "072" and parse_icc(bytes.fromhex(sent[-1]["55"]))["9F36"] == b"\x00\x02"

            fallback = await pos.card_financial("purchase", failing, mode=ReadMode.CONTACT, amount=200, pin=failing.pin)
            assert fallback is not None and fallback.approved
            assert sent[-1]["22"] == "801" and Field60.parse(sent[-1]["60"]).extra == "62" and "55" not in sent[-1]

            refused = await pos.card_financial("purchase", declining, mode=ReadMode.CONTACT, amount=300, pin="888888")
            assert refused is not None and refused.response_code == "00" and refused.card_declined
            assert refused.issuer_authenticated  # the issuer was genuine: the card declined by itself
            assert not refused.approved
            reversal = sent[-1]
            assert reversal["t"] == "0400" and reversal["39"] == "06" and reversal["11"] == sent[-2]["11"]
            assert [tag for tag, _ in parse_tlv(bytes.fromhex(reversal["55"]))] == [
                t for t in REVERSAL_TAGS if t != "DF31"
            ]
            assert pos.session.state.pending_reversal is None  # the host took the reversal
            assert all(t.stan != reversal["11"] for t in pos.session.state.batch_txns)
            balance = await pos.financial("balance", declining, pin=declining.pin)
            assert balance is not None and balance.fields["54"].endswith(f"{declining.balance:012d}")  # undone

        async with PosTerminal(config, "10000001", nac=pipeline.nac) as pos:
            assert pos.session.state.card_atcs[GOOD] == 2  # kept in the sealed state: never repeated
            again = await pos.card_financial("purchase", good, mode=ReadMode.CONTACT, amount=1, pin=good.pin)
            assert again is not None and again.approved
            assert pos.session.state.card_atcs[GOOD] == 3
    stored = state_path(config.terminal_state_dir, "10000001").read_text()
    assert GOOD not in stored and "card_atcs" not in stored  # the ATCs are sealed with the other card data


async def test_an_mpos_purchase_through_an_aes_dukpt_reader(tmp_path: Path) -> None:
    """X9.24-3 end to end over the pipeline: the reader's format 4 PIN block travels in 62; the HSM's GQ (AES
    layout) verifies it and M2 opens the AES track; a wrong PIN is 55 and nothing posts."""
    config = AcqsimConfig.default(data_dir=tmp_path)
    good = config.card(GOOD)
    async with running_pipeline(config) as pipeline, PosTerminal(config, "10000002", nac=pipeline.nac) as phone:
        sent: list[dict[str, str]] = []
        real_send = phone._send

        async def recording_send(payload: bytes) -> bytes | None:
            sent.append(decode_pos_body(PosFrame.parse(payload).body))
            return await real_send(payload)

        phone._send = recording_send  # type: ignore[method-assign]
        bought = await phone.mpos_financial("purchase", good, amount=700, pin=good.pin, scheme=DukptScheme.AES)
        assert bought is not None and bought.approved
        request = DukptTrackData.parse(sent[-1]["62"])
        assert request.scheme == SCHEME_AES and len(request.ksn) == 12 and request.pin_block is not None
        assert "52" not in sent[-1] and "2" not in sent[-1] and "35" not in sent[-1]
        wrong = await phone.mpos_financial("purchase", good, amount=700, pin="000000", scheme=DukptScheme.AES)
        assert wrong is not None and wrong.response_code == "55"
        balance = await phone.financial("balance", good, pin=good.pin)
        assert balance is not None and balance.fields["54"].endswith(f"{good.balance - 700:012d}")


async def test_a_lost_script_advice_is_sent_again_until_acknowledged(tmp_path: Path) -> None:
    """The host gets the first 0620 but its answer is lost: the advice stays in the (sealed) terminal state and
    goes again, same STAN, before the terminal's next request — also after a restart."""
    config = AcqsimConfig.default(data_dir=tmp_path)
    scripted = config.card(SCRIPTED)
    sent: list[dict[str, str]] = []
    async with running_pipeline(config) as pipeline:
        async with PosTerminal(config, "10000001", nac=pipeline.nac) as pos:
            real_send = pos._send

            async def first_advice_answer_lost(payload: bytes) -> bytes | None:
                fields = decode_pos_body(PosFrame.parse(payload).body)
                sent.append(fields)
                answer = await real_send(payload)
                first_advice = fields["t"] == "0620" and sum(f["t"] == "0620" for f in sent) == 1
                return None if first_advice else answer

            pos._send = first_advice_answer_lost  # type: ignore[method-assign]
            bought = await pos.card_financial("purchase", scripted, mode=ReadMode.CONTACT, amount=500, pin=scripted.pin)
            assert bought is not None and bought.approved and bought.scripts_ran
            assert len(pos.session.state.pending_advices) == 1  # not acknowledged: kept
        stored = state_path(config.terminal_state_dir, "10000001").read_text()
        assert scripted.pan not in stored  # sealed with the other card data
        async with PosTerminal(config, "10000001", nac=pipeline.nac) as pos:
            assert len(pos.session.state.pending_advices) == 1
            real_send = pos._send

            async def recording_send(payload: bytes) -> bytes | None:
                sent.append(decode_pos_body(PosFrame.parse(payload).body))
                return await real_send(payload)

            pos._send = recording_send  # type: ignore[method-assign]
            balance = await pos.financial("balance", scripted, pin=scripted.pin)
            assert balance is not None and balance.approved
            advices = [f for f in sent if f["t"] == "0620"]
            assert len(advices) == 2 and advices[0]["11"] == advices[1]["11"] and advices[0]["55"] == advices[1]["55"]
            assert sent[-2]["t"] == "0620" and sent[-1]["t"] == "0200"  # the advice went before the request
            assert pos.session.state.pending_advices == []
