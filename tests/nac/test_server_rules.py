"""A rules file at the NAC (``acqsim up --rules``) over real loopback TCP, on both paths (asyncio: callbacks,
trio: tasks): a delayed request holds its terminal's later frames behind it, a rule's answer, drop and close."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from acqkit.rules import RuleBook
from nac.events import CloseReason
from tests.nac.helpers import request
from tests.nac.netkit import STEP_TIMEOUT_S, EchoFrontEnd, answer_body, round_trip, running_nac, start_member, terminal
from wire.codec import decode_pos_body, encode_pos_body
from wire.posframe import PosFrame

pytestmark = pytest.mark.anyio

TERMINAL_TPDU = bytes.fromhex("6000000003")
DELAY_S = 0.3
RULES = f"""
[[rule]]
name = "slow line"
at = "nac"
terminal = "SLOW0001"
action = "delay"
delay_s = {DELAY_S}
times = 1

[[rule]]
name = "declined here"
at = "nac"
terminal = "ANSWER01"
action = "answer"
code = "05"

[[rule]]
name = "lost"
at = "nac"
terminal = "DROP0001"
action = "drop"

[[rule]]
name = "hung up"
at = "nac"
terminal = "CLOSE001"
action = "close"
"""


def purchase(terminal_id: str, stan: str) -> bytes:
    return request(encode_pos_body({"t": "0200", "3": "000000", "11": stan, "41": terminal_id}))


@pytest.fixture
def rules(tmp_path: Path) -> RuleBook:
    path = tmp_path / "rules.toml"
    path.write_text(RULES, encoding="utf-8")
    return RuleBook(path, "nac")


async def test_a_delayed_request_holds_the_terminals_later_frames_behind_it(rules: RuleBook) -> None:
    front_end = EchoFrontEnd("A")
    first, second = purchase("SLOW0001", "000001"), purchase("SLOW0001", "000002")
    async with anyio.create_task_group() as members:
        port, _ = await start_member(members, front_end)
        async with running_nac(port, rules=rules) as (server, ports):
            conn = await terminal(ports.listen)
            sent_at = anyio.current_time()
            await conn.send(first)
            await conn.send(second)  # matches the rule too, but it fires once: routed at once, after the first
            answers = {await conn.receive(STEP_TIMEOUT_S) for _ in range(2)}
            assert anyio.current_time() - sent_at >= DELAY_S
            assert answers == {TERMINAL_TPDU + answer_body(p, "A") for p in (first, second)}
            assert front_end.seen == [first[5:], second[5:]]  # in the order the terminal sent them
            assert server.stats.frames_forwarded == 2
            await conn.aclose()
        members.cancel_scope.cancel()


async def test_answer_drop_and_close_rules(rules: RuleBook) -> None:
    front_end = EchoFrontEnd("A")
    async with anyio.create_task_group() as members:
        port, _ = await start_member(members, front_end)
        async with running_nac(port, rules=rules) as (server, ports):
            conn = await terminal(ports.listen)
            answer = await round_trip(conn, purchase("ANSWER01", "000003"))  # answered by the NAC itself
            fields = decode_pos_body(PosFrame.parse(answer).body)
            assert (fields["t"], fields["39"], fields["41"]) == ("0210", "05", "ANSWER01")
            await conn.send(purchase("DROP0001", "000004"))  # never routed, never answered
            plain = request(b"routed as usual")
            assert await round_trip(conn, plain) == TERMINAL_TPDU + answer_body(plain, "A")
            assert front_end.seen == [plain[5:]]

            closed = await terminal(ports.listen)
            await closed.send(purchase("CLOSE001", "000005"))
            assert await closed.receive(STEP_TIMEOUT_S) is None  # the NAC hung up
            assert server.stats.closed[CloseReason.BY_RULE] == 1
            assert await round_trip(conn, plain) == TERMINAL_TPDU + answer_body(plain, "A")  # the other is served
            await closed.aclose()
            await conn.aclose()
        members.cancel_scope.cancel()
