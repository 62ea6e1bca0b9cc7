"""The four-party path over real loopback TCP: acquirer → switch → issuer B (its own HSM and ledger) and back,
with the PIN translated twice (CA at the acquirer's HSM, CC at the switch's) and verified at the issuer's HSM (EC);
a down and a silent issuer (stand-in or 91); an unknown BIN; bad MACs; repeats. Both anyio backends."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from pathlib import Path

import anyio
import anyio.abc
import pytest

from acqsim.fourparty import (
    ACQUIRER_ID,
    CARD_C,
    CREDIT_B,
    DEBIT_B,
    ISSUER_B_ID,
    ISSUER_C_ID,
    ZAK_ISSUER_B,
    SchemeCard,
    World,
    running_world,
)
from core_ledger.api import LedgerOp
from core_ledger.sqlite_store import SqliteStore
from hsm_sim.client import HsmClient, KeyType
from scheme.client import OriginalData, SwitchLinkClient, SwitchRejected, SwitchRequest, ZoneMac, encode_with_mac
from scheme.server import SwitchShell
from wire.constants import Mti, ResponseCode
from wire.switchlink import RejectCode, SwitchHeader, decode_switch_message
from wire.trace import read_trace

pytestmark = pytest.mark.anyio
CLOCK = dt.datetime(2026, 12, 4, 9, 30, tzinfo=dt.UTC)


def balance(world: World, card: SchemeCard) -> int:
    store = SqliteStore(world.ledger_b_db)
    try:
        state = store.load()
        return state.accounts[state.cards[card.pan].account_id].balance
    finally:
        store.close()


async def purchase(world: World, card: SchemeCard, amount: int, *, pin: bool = True) -> tuple[SwitchRequest, str, str]:
    block = await world.pin_block(card) if pin else None
    request = world.request(LedgerOp.PURCHASE, card, amount, pin_block=block)
    answer = await world.send(request)
    assert answer.fields["t"] == Mti.FINANCIAL_RESPONSE and answer.fields["37"] == request.rrn
    return request, answer.fields["39"], answer.fields.get("38", "")


async def test_off_us_purchase_reversal_and_refund_end_to_end(tmp_path: Path) -> None:
    async with running_world(tmp_path, clock=CLOCK) as world:
        opening = balance(world, DEBIT_B)
        request, code, auth = await purchase(world, DEBIT_B, 12_345)
        assert code == ResponseCode.APPROVED and auth  # PIN verified at issuer B under its own zone key
        assert balance(world, DEBIT_B) == opening - 12_345

        wrong_pin = await world.pin_block(SchemeCard(pan=DEBIT_B.pan, pin="999999"))
        answer = await world.send(world.request(LedgerOp.PURCHASE, DEBIT_B, 500, pin_block=wrong_pin))
        assert answer.fields["39"] == ResponseCode.INCORRECT_PIN

        # a second purchase reversed with its own RRN, as the front-end's timeout reversal does
        second, code, _ = await purchase(world, DEBIT_B, 2_000)
        assert code == ResponseCode.APPROVED
        reversal = world.request(
            LedgerOp.REVERSAL,
            DEBIT_B,
            2_000,
            stan=world.next_stan(),
            rrn=second.rrn,
            original=OriginalData(
                mti="0200", stan=second.stan, local_date=second.local_date, local_time=second.local_time
            ),
        )
        answer = await world.send(reversal)
        assert answer.fields["39"] == ResponseCode.APPROVED and answer.fields["t"] == Mti.REVERSAL_RESPONSE
        assert balance(world, DEBIT_B) == opening - 12_345

        refund = world.request(
            LedgerOp.REFUND,
            DEBIT_B,
            345,
            original=OriginalData(
                mti="0200", stan=request.stan, local_date=request.local_date, local_time=request.local_time
            ),
        )
        answer = await world.send(refund)
        assert answer.fields["39"] == ResponseCode.APPROVED
        assert balance(world, DEBIT_B) == opening - 12_000

        legs = world.journal.all()
        assert [(leg.op, leg.response_code.value, leg.issuer_id) for leg in legs] == [
            (LedgerOp.PURCHASE, "00", ISSUER_B_ID),
            (LedgerOp.PURCHASE, "55", ISSUER_B_ID),
            (LedgerOp.PURCHASE, "00", ISSUER_B_ID),
            (LedgerOp.REVERSAL, "00", ISSUER_B_ID),
            (LedgerOp.REFUND, "00", ISSUER_B_ID),
        ]
        assert all("******" in leg.masked_pan and DEBIT_B.pan not in leg.masked_pan for leg in legs)
        cleared = world.journal.to_clear("20261204")
        assert [(c.op, c.amount) for c in cleared] == [(LedgerOp.PURCHASE, 12_345), (LedgerOp.REFUND, 345)]


async def test_credit_card_and_a_repeat_is_answered_once(tmp_path: Path) -> None:
    async with running_world(tmp_path, clock=CLOCK) as world:
        opening = balance(world, CREDIT_B)
        block = await world.pin_block(CREDIT_B)
        request = world.request(LedgerOp.PURCHASE, CREDIT_B, 50_000, pin_block=block)
        first = await world.send(request)
        again = await world.send(request)
        assert first.fields["39"] == again.fields["39"] == ResponseCode.APPROVED
        assert first.fields["38"] == again.fields["38"]
        assert balance(world, CREDIT_B) == opening - 50_000
        assert len(world.journal.all()) == 1


async def test_a_repeated_key_with_other_content_is_refused_94_and_never_forwarded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_world(tmp_path, clock=CLOCK) as world:
        opening = balance(world, CREDIT_B)
        request = world.request(LedgerOp.PURCHASE, CREDIT_B, 10_000, pin_block=await world.pin_block(CREDIT_B))
        assert (await world.send(request)).fields["39"] == ResponseCode.APPROVED
        changed = dataclasses.replace(request, amount=90_000)
        with caplog.at_level(logging.WARNING, logger="acqsim.scheme"):
            refused = await world.send(changed)
        assert (refused.fields["39"], refused.fields["37"]) == (ResponseCode.DUPLICATE, request.rrn)
        conflict = next(r.getMessage() for r in caplog.records if "key conflict" in r.getMessage())
        assert "amount=10000" in conflict and "amount=90000" in conflict and request.rrn in conflict
        other_card = world.request(LedgerOp.PURCHASE, DEBIT_B, 10_000, stan=request.stan, rrn=request.rrn)
        assert (await world.send(other_card)).fields["39"] == ResponseCode.DUPLICATE
        assert balance(world, CREDIT_B) == opening - 10_000  # posted once: the changed ones never reached B
        assert len(world.journal.all()) == 1 and world.switch.conflicts == 2
        again = await world.send(request)  # the identical retry still gets its first answer
        assert again.fields["39"] == ResponseCode.APPROVED


async def test_unknown_bin_is_a_decline_not_a_crash(tmp_path: Path) -> None:
    async with running_world(tmp_path, clock=CLOCK) as world:
        stranger = SchemeCard(pan="4111111111111111", pin="1234")
        _, code, _ = await purchase(world, stranger, 100, pin=False)
        assert code == ResponseCode.INVALID_CARD
        _, code, _ = await purchase(world, DEBIT_B, 100)  # the switch serves on
        assert code == ResponseCode.APPROVED


@pytest.mark.parametrize("issuer_c", ["down", "silent"])
async def test_issuer_down_stands_in_up_to_the_limit_else_91(tmp_path: Path, issuer_c: str) -> None:
    async with running_world(
        tmp_path, clock=CLOCK, stand_in_limit=10_000, issuer_c=issuer_c, issuer_timeout=0.5
    ) as world:
        small, code, auth = await purchase(world, CARD_C, 10_000)
        assert code == ResponseCode.APPROVED and auth.startswith("S")
        _, code, _ = await purchase(world, CARD_C, 10_001)
        assert code == ResponseCode.ISSUER_UNAVAILABLE
        # the reversal of a stand-in approval is the switch's own to approve
        reversal = world.request(
            LedgerOp.REVERSAL,
            CARD_C,
            10_000,
            rrn=small.rrn,
            original=OriginalData(
                mti="0200", stan=small.stan, local_date=small.local_date, local_time=small.local_time
            ),
        )
        answer = await world.send(reversal)
        assert answer.fields["39"] == ResponseCode.APPROVED
        legs = world.journal.all()
        assert [(leg.issuer_id, leg.stand_in, leg.response_code.value) for leg in legs] == [
            (ISSUER_C_ID, True, "00"),
            (ISSUER_C_ID, True, "91"),
            (ISSUER_C_ID, True, "00"),
        ]
        assert world.journal.to_clear("20261204") == []  # reversed: nothing to clear
        # owed to issuer C: the stand-in advice and its reversal; for the 91, a down issuer never got it (nothing
        # owed), a silent one may have carried it out (a reversal owed)
        owed = list(world.journal.reversal_states().values())
        assert owed == ["pending"] * (2 if issuer_c == "down" else 3)


async def test_a_late_issuer_answer_leaves_a_reversal_that_the_switch_sends_until_taken(tmp_path: Path) -> None:
    gate = anyio.Event()
    async with running_world(
        tmp_path, clock=CLOCK, stand_in_limit=None, issuer_timeout=0.5, issuer_b_gate=gate
    ) as world:
        opening = balance(world, DEBIT_B)
        request, code, _ = await purchase(world, DEBIT_B, 3_000)
        assert code == ResponseCode.ISSUER_UNAVAILABLE  # the switch heard nothing in time
        assert balance(world, DEBIT_B) == opening - 3_000  # but the issuer did post
        key = (ACQUIRER_ID, request.rrn, "02")
        assert world.journal.reversal_states() == {key: "pending"}
        gate.set()
        assert await world.switch.retry_reversals() == 1
        assert balance(world, DEBIT_B) == opening
        assert world.journal.reversal_states() == {key: "done"}
        assert await world.switch.retry_reversals() == 0  # sent once it was taken, never again


async def test_without_stand_in_a_down_issuer_declines_91(tmp_path: Path) -> None:
    async with running_world(tmp_path, clock=CLOCK, stand_in_limit=None, issuer_timeout=0.5) as world:
        _, code, _ = await purchase(world, CARD_C, 100)
        assert code == ResponseCode.ISSUER_UNAVAILABLE


async def test_a_bad_mac_is_rejected_and_a_wrong_sender_too(tmp_path: Path) -> None:
    async with running_world(tmp_path, clock=CLOCK) as world:
        wrong_zak = await world.acquirer_key(KeyType.ZAK, ZAK_ISSUER_B)
        forged = SwitchLinkClient(
            "127.0.0.1",
            world.switch_port,
            own_id=ACQUIRER_ID,
            peer_id="00010000",
            zone=ZoneMac(world.acquirer_hsm, wrong_zak),
        )
        async with forged:
            with pytest.raises(SwitchRejected) as info:
                await forged.exchange(world.request(LedgerOp.PURCHASE, DEBIT_B, 100).fields())
            assert info.value.code is RejectCode.MAC_FAILED
        stranger = SwitchLinkClient(
            "127.0.0.1",
            world.switch_port,
            own_id="99990000",
            peer_id="00010000",
            zone=world.acquirer.zone,
        )
        async with stranger:
            with pytest.raises(SwitchRejected) as info:
                await stranger.exchange(world.request(LedgerOp.PURCHASE, DEBIT_B, 100).fields())
            assert info.value.code is RejectCode.UNKNOWN_SOURCE
        assert world.journal.all() == []


async def test_every_leg_is_traced_masked_without_the_pin_block(tmp_path: Path) -> None:
    traces = tmp_path / "traces"
    async with running_world(tmp_path, clock=CLOCK, trace_dir=traces) as world:
        request, code, _ = await purchase(world, DEBIT_B, 1_000)
        assert code == ResponseCode.APPROVED
    switch_records = read_trace(traces / "scheme.jsonl")
    issuer_records = read_trace(traces / "issuer-b.jsonl")
    assert [r["direction"] for r in switch_records] == ["in", "out"]  # the acquirer leg, in and out
    assert [r["direction"] for r in issuer_records] == ["in", "out"]  # the issuer leg
    assert issuer_records[-1]["note"] == "00"
    assert switch_records[0]["message"]["fields"]["52"] == "[hidden]"
    text = (traces / "scheme.jsonl").read_text() + (traces / "issuer-b.jsonl").read_text()
    assert DEBIT_B.pan not in text and "623050******0014" in text
    assert request.fields()["52"] not in text


async def test_without_its_hsm_the_switch_rejects_and_serves_on(tmp_path: Path) -> None:
    """The switch's HSM unreachable: each frame goes back rejected 10005 (never a dropped connection)."""
    async with running_world(tmp_path, clock=CLOCK) as world:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        closed = listener.extra(anyio.abc.SocketAttribute.local_port)
        await listener.aclose()
        async with HsmClient("127.0.0.1", closed, timeout=0.5) as no_hsm:
            shell = SwitchShell(world.switch.core, world.journal, no_hsm)
            request = world.request(LedgerOp.PURCHASE, DEBIT_B, 100)
            header = SwitchHeader(destination_id="00010000", source_id=ACQUIRER_ID)
            frame = await encode_with_mac(header, request.fields(), world.acquirer.zone)
            rejected = decode_switch_message(await shell.answer(frame, "test"))
            assert rejected.header.reject_code is RejectCode.CANNOT_PROCESS
            assert rejected.fields["37"] == request.rrn
        _, code, _ = await purchase(world, DEBIT_B, 100)  # the real switch, with its HSM, serves on
        assert code == ResponseCode.APPROVED
