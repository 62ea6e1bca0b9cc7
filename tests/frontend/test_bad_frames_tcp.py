"""Over real TCP, on one link as the NAC uses it: bad frames from one terminal, interleaved with a good
terminal's purchases, cost the good terminal nothing (the link stays up, every purchase is answered)."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from acqkit.config import AcqsimConfig
from acqkit.netio import FramedConnection, connect
from acqsim.pipeline import running_pipeline
from terminal.session import TerminalSession
from terminal.state import TerminalState
from wire.codec import decode_pos_body, encode_pos_body
from wire.constants import NetworkCode
from wire.posframe import BODY_OFFSET, PosFrame

pytestmark = pytest.mark.anyio
ANSWER_TIMEOUT_S = 10.0


def session(config: AcqsimConfig, index: int) -> TerminalSession:
    fixture = config.terminals[index]
    state = TerminalState(terminal_id=fixture.terminal_id, merchant_id=fixture.merchant_id)
    return TerminalSession(state, bytes.fromhex(fixture.tmk))


async def answer_for(conn: FramedConnection, terminal_id: str) -> bytes:
    """The next answer addressed to ``terminal_id`` (answers to the bad frames are read and set aside)."""
    while True:
        payload = await conn.receive(ANSWER_TIMEOUT_S)
        assert payload is not None, "the front-end closed the link"
        if decode_pos_body(PosFrame.parse(payload).body).get("41") == terminal_id:
            return payload


def bad_frames(good_purchase: bytes) -> list[bytes]:
    """One of each kind the issue names, built from a valid purchase of the *other* terminal."""
    head, body = good_purchase[:BODY_OFFSET], good_purchase[BODY_OFFSET:]
    fields = decode_pos_body(body)
    return [
        head + body[:15],  # a body that does not decode
        head + encode_pos_body({**fields, "t": "0210"}),  # an answer's MTI sent as a request
        head + encode_pos_body({**fields, "t": "0810"}),
        head + encode_pos_body({k: v for k, v in {**fields, "t": "0400"}.items() if k not in ("60", "61")}),
        head + encode_pos_body({k: v for k, v in fields.items() if k != "60"}),
        head + encode_pos_body({**fields, "t": "0600"}),
        head + bytes([0x02, 0x00]) + b"\xff" * 8 + b"\x99",  # bitmap promising fields that are not there
    ]


async def test_bad_frames_on_a_link_cost_only_their_sender(tmp_path: Path) -> None:
    config = AcqsimConfig.default(data_dir=tmp_path)
    good, bad = session(config, 0), session(config, 1)
    card = config.cards[0]
    async with running_pipeline(config) as pipeline:
        conn = await connect(pipeline.frontend.host, pipeline.frontend.port, timeout=5)
        try:
            for terminal in (good, bad):
                await conn.send(terminal.sign_on())
                outcome = terminal.receive("sign_on", await answer_for(conn, terminal.state.terminal_id))
                assert outcome.approved
            approved = 0
            for _ in range(3):
                junk = bad_frames(bad.financial("purchase", card, amount=100, pin=card.pin))
                async with anyio.create_task_group() as tg:  # sent together, as a NAC multiplexes them
                    for frame in junk:
                        tg.start_soon(conn.send, frame)
                    tg.start_soon(conn.send, good.financial("purchase", card, amount=100, pin=card.pin))
                outcome = good.receive("purchase", await answer_for(conn, good.state.terminal_id))
                approved += outcome.approved and outcome.trusted
            assert approved == 3
            # and the link still serves an echo test after all that
            await conn.send(good.network(NetworkCode.ECHO))
            assert good.receive("echo", await answer_for(conn, good.state.terminal_id)).approved
        finally:
            await conn.aclose()


async def test_an_idle_link_is_closed_after_the_idle_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One cancel scope per link bounds its idle time: a link that was used and then fell silent is closed."""
    monkeypatch.setattr("frontend.server.IDLE_TIMEOUT_S", 0.3)
    monkeypatch.setattr("frontend.server.IDLE_CHECK_S", 0.0)
    config = AcqsimConfig.default(data_dir=tmp_path)
    terminal = session(config, 0)
    async with running_pipeline(config) as pipeline:
        conn = await connect(pipeline.frontend.host, pipeline.frontend.port, timeout=5)
        try:
            await conn.send(terminal.sign_on())
            assert terminal.receive("sign_on", await answer_for(conn, terminal.state.terminal_id)).approved
            assert await conn.receive(ANSWER_TIMEOUT_S) is None  # closed by the front-end, well before this
        finally:
            await conn.aclose()


async def test_frames_beyond_the_in_flight_limit_wait_and_every_one_is_answered_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More purchases in one write than a link may have in flight: the rest wait (reading pauses), none is lost,
    none answered twice — on the callback path (asyncio) and the task path (trio) alike."""
    monkeypatch.setattr("frontend.server.MAX_IN_FLIGHT_PER_CONNECTION", 3)
    config = AcqsimConfig.default(data_dir=tmp_path)
    terminal, card = session(config, 0), config.cards[0]
    async with running_pipeline(config) as pipeline:
        conn = await connect(pipeline.frontend.host, pipeline.frontend.port, timeout=5)
        try:
            await conn.send(terminal.sign_on())
            assert terminal.receive("sign_on", await answer_for(conn, terminal.state.terminal_id)).approved
            purchases = [terminal.financial("purchase", card, amount=100 + n) for n in range(20)]
            sent = {decode_pos_body(PosFrame.parse(frame).body)["11"] for frame in purchases}
            await conn.send_many(purchases)
            codes: dict[str, str] = {}
            for _ in purchases:
                fields = decode_pos_body(PosFrame.parse(await answer_for(conn, terminal.state.terminal_id)).body)
                assert fields["11"] not in codes, "a purchase answered twice"
                codes[fields["11"]] = fields["39"]
            assert set(codes) == sent
            assert set(codes.values()) == {"00"}
        finally:
            await conn.aclose()
