"""The echo host: its answers are ones an unmodified terminal session trusts (sign-on keys whose check values
match, answers MAC'd under the key it handed out), and it serves them over real TCP."""

from __future__ import annotations

import functools

import anyio
import pytest

from acqkit.config import AcqsimConfig
from acqkit.netio import connect
from terminal.echohost.core import ECHO_AUTH_CODE, EchoHost, answer_mti
from terminal.echohost.server import echo_host_for, serve_echo_host
from terminal.session import TerminalSession
from terminal.state import TerminalState
from wire.codec import decode_pos_body
from wire.paycrypto import mac_cup_ecb
from wire.posframe import PosFrame

CONFIG = AcqsimConfig.default()
CARD = CONFIG.cards[0]


def _session(terminal_id: str = "10000001") -> TerminalSession:
    fixture = CONFIG.terminals[0]
    return TerminalSession(
        TerminalState(terminal_id=terminal_id, merchant_id=fixture.merchant_id), bytes.fromhex(fixture.tmk)
    )


def test_a_terminal_signs_on_and_trusts_every_answer() -> None:
    host = echo_host_for(CONFIG)
    session = _session()
    assert session.receive("sign_on", host.answer(session.sign_on()) or b"").approved
    for kind in ("purchase", "balance", "preauth"):
        request = session.financial(kind, CARD, amount=1234, pin=CARD.pin)
        answer = host.answer(request)
        assert answer is not None
        outcome = session.receive(kind, answer)
        assert outcome.approved and outcome.trusted, kind  # the MAC verified under the key from the sign-on
        sent, got = decode_pos_body(PosFrame.parse(request).body), outcome.fields
        assert got["t"] == answer_mti(sent["t"]) and got["38"] == ECHO_AUTH_CODE
        assert {k: got[k] for k in ("11", "41", "42")} == {k: sent[k] for k in ("11", "41", "42")}
    assert session.state.pending_reversal is None  # every approval was trusted, so no reversal is owed
    assert host.answered == 4 and host.dropped == 0


def test_a_terminal_it_does_not_know_gets_the_first_terminals_tmk() -> None:
    host = EchoHost({"10000001": bytes.fromhex(CONFIG.terminals[0].tmk)})
    session = _session("29999999")
    assert session.receive("sign_on", host.answer(session.sign_on()) or b"").approved


def test_an_answer_mac_is_the_cup_mac_of_its_body() -> None:
    from terminal.echohost.core import ECHO_TEST_MAK
    from wire.codec import pos_body_mac, pos_mac_block

    host = echo_host_for(CONFIG)
    session = _session()
    session.receive("sign_on", host.answer(session.sign_on()) or b"")
    body = PosFrame.parse(host.answer(session.financial("purchase", CARD, amount=1, pin=CARD.pin)) or b"").body
    assert pos_body_mac(body) == mac_cup_ecb(ECHO_TEST_MAK, pos_mac_block(body))


@pytest.mark.parametrize("payload", [b"", b"\x60\x00\x03\x00\x00", bytes(40), b"\x60" + bytes(10) + b"\x02\x00"])
def test_what_does_not_decode_is_dropped_and_counted(payload: bytes) -> None:
    host = echo_host_for(CONFIG)
    assert host.answer(payload) is None
    assert host.dropped == 1


@pytest.mark.anyio
async def test_it_answers_pipelined_requests_over_tcp() -> None:
    host = echo_host_for(CONFIG)
    session = _session()
    async with anyio.create_task_group() as tg:
        port = await tg.start(functools.partial(serve_echo_host, host, "127.0.0.1", 0))
        conn = await connect("127.0.0.1", port, timeout=5)
        try:
            await conn.send(session.sign_on())
            with anyio.fail_after(5):
                assert session.receive("sign_on", await conn.receive() or b"").approved
                requests = [session.financial("balance", CARD, pin=CARD.pin) for _ in range(20)]
                await conn.send_many(requests)  # twenty requests in one write
                answers = [await conn.receive() or b"" for _ in requests]
            stans = [decode_pos_body(PosFrame.parse(a).body)["11"] for a in answers]
            assert stans == [decode_pos_body(PosFrame.parse(r).body)["11"] for r in requests]
        finally:
            await conn.aclose()
            tg.cancel_scope.cancel()
