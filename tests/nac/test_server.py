"""The NAC over real loopback TCP with echo front-ends written here, on both anyio backends."""

from __future__ import annotations

import collections
import functools
import json
import logging

import anyio
import anyio.lowlevel
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acqkit.netio import FramedConnection
from acqsim.cli import main as acqsim_main
from nac.events import CloseReason, DropReason
from nac.server import NacServer
from nac.status import fetch_stats
from tests.fdlimit import one_descriptor_left
from tests.nac.helpers import ECHO_MARKER, request, table
from tests.nac.netkit import (
    NEVER,
    SLOW,
    STEP_TIMEOUT_S,
    EchoFrontEnd,
    answer_body,
    deaf_terminal,
    round_trip,
    running_nac,
    start_member,
    terminal,
    wait_until,
)
from wire.framing import frame

pytestmark = pytest.mark.anyio

TERMINAL_TPDU = bytes.fromhex("6000000003")


def member_of(answer: bytes) -> str:
    """The echo front-end's name, appended after the marker."""
    return answer.rsplit(ECHO_MARKER, 1)[1].decode()


# one terminal's plan: how many requests, sent all at once (pipelined) or one by one, and whether it
# leaves right after sending, without reading its answers
TerminalPlan = tuple[int, bool, bool]


@settings(max_examples=6)
@given(plans=st.lists(st.tuples(st.integers(1, 4), st.booleans(), st.booleans()), min_size=1, max_size=14))
async def test_many_terminals_each_get_exactly_their_own_answers(plans: list[TerminalPlan]) -> None:
    front_ends = [EchoFrontEnd("A"), EchoFrontEnd("B")]
    received: dict[int, list[bytes]] = {}
    sent: dict[int, list[bytes]] = {}
    async with anyio.create_task_group() as members:
        ports = [(await start_member(members, fe))[0] for fe in front_ends]
        async with running_nac(*ports, max_in_flight=4) as (server, nac_ports):

            async def run_terminal(index: int, count: int, pipelined: bool, leaves: bool) -> None:
                payloads = [request(f"t{index}-r{i}".encode()) for i in range(count)]
                sent[index] = payloads
                conn = await terminal(nac_ports.listen)
                try:
                    if leaves or pipelined:
                        for payload in payloads:
                            await conn.send(payload)
                        if leaves:
                            return
                        answers = [await conn.receive(STEP_TIMEOUT_S) for _ in payloads]
                        received[index] = [a for a in answers if a is not None]
                    else:
                        received[index] = [await round_trip(conn, payload) for payload in payloads]
                finally:
                    await conn.aclose()

            async with anyio.create_task_group() as terminals:
                for index, (count, pipelined, leaves) in enumerate(plans):
                    terminals.start_soon(run_terminal, index, count, pipelined, leaves)
            await wait_until(lambda: server.router.addresses_in_use == 0)  # late answers have come
            stats = server.stats
        members.cancel_scope.cancel()

    for index, (_, _, leaves) in enumerate(plans):
        if leaves:
            assert index not in received
            continue
        answers = received[index]
        assert all(a[:5] == TERMINAL_TPDU for a in answers)
        expected = collections.Counter(answer_body(p, "") for p in sent[index])
        assert collections.Counter(a[5:].rsplit(ECHO_MARKER, 1)[0] + ECHO_MARKER for a in answers) == expected
    staying = sum(count for count, _, leaves in plans if not leaves)
    assert stats.frames_delivered >= staying
    # every forwarded request was answered: handed to its terminal, or dropped because that terminal had left
    assert stats.frames_delivered + stats.dropped[DropReason.TERMINAL_GONE] == stats.frames_forwarded
    assert stats.dropped[DropReason.UNKNOWN_RETURN_ADDRESS] == 0 and stats.in_flight == 0


async def test_upstream_killed_and_restarted_fails_over_and_reconnects() -> None:
    async with anyio.create_task_group() as members:
        port_a, kill_a = await start_member(members, EchoFrontEnd("A"))
        port_b, _ = await start_member(members, EchoFrontEnd("B"))
        async with running_nac(port_a, port_b, backoff_max_s=0.1) as (server, ports):
            conn = await terminal(ports.listen)
            assert {member_of(await round_trip(conn, request(b"r%d" % i))) for i in range(4)} == {"A", "B"}

            # two slow requests in flight, one on each member (round robin); A dies under its request
            for i in range(2):
                await conn.send(request(SLOW + b"%d" % i))
            await wait_until(lambda: server.stats.in_flight == 2)
            kill_a.cancel()
            await wait_until(lambda: not server.stats.members[f"127.0.0.1:{port_a}"].up)
            survivor = await conn.receive(STEP_TIMEOUT_S)
            assert survivor is not None and member_of(survivor) == "B"
            assert server.stats.dropped_on_link_failure == 1
            assert server.stats.routes["0003"].errors["dropped_on_link_failure"] == 1

            # everything now goes to B
            assert {member_of(await round_trip(conn, request(b"s%d" % i))) for i in range(4)} == {"B"}

            # A comes back on the same port: reconnected, and round robin uses it again
            await start_member(members, EchoFrontEnd("A"), port=port_a)
            await wait_until(lambda: server.stats.members[f"127.0.0.1:{port_a}"].up)
            assert {member_of(await round_trip(conn, request(b"u%d" % i))) for i in range(4)} == {"A", "B"}
            assert server.stats.members[f"127.0.0.1:{port_a}"].connects == 2
            await conn.aclose()
        members.cancel_scope.cancel()


async def test_return_address_reused_only_after_the_late_answer_and_never_misdelivered() -> None:
    front_end = EchoFrontEnd("A")
    async with anyio.create_task_group() as members:
        port, _ = await start_member(members, front_end)
        async with running_nac(port, address_pool_size=1) as (server, ports):
            leaver = await terminal(ports.listen)
            await leaver.send(request(SLOW + b"-leaver"))
            await wait_until(lambda: server.stats.frames_forwarded == 1)
            await leaver.aclose()
            await wait_until(lambda: server.stats.connections_open == 0)

            newcomer = await terminal(ports.listen)
            await newcomer.send(request(b"too-early"))  # the only address is still held: dropped
            await wait_until(lambda: server.stats.dropped[DropReason.ADDRESS_POOL_EXHAUSTED] == 1)
            await wait_until(lambda: server.stats.dropped[DropReason.TERMINAL_GONE] == 1)  # the late answer
            answer = await round_trip(newcomer, request(b"mine"))
            assert answer == TERMINAL_TPDU + answer_body(request(b"mine"), "A")
            assert front_end.seen_src == ["0001", "0001"]  # the same address, reused after the answer
            with anyio.move_on_after(0.2):  # nothing else (the leaver's answer above all) ever arrives
                assert await newcomer.receive() is None
                pytest.fail("unexpected frame")
            await newcomer.aclose()
        members.cancel_scope.cancel()


async def test_answer_timeout_frees_the_slot_and_the_late_answer_is_dropped() -> None:
    async with anyio.create_task_group() as members:
        port, _ = await start_member(members, EchoFrontEnd("A"))
        async with running_nac(port, answer_timeout_s=0.2, max_in_flight=1) as (server, ports):
            conn = await terminal(ports.listen)
            await conn.send(request(SLOW + b"-first"))
            await wait_until(lambda: server.stats.answer_timeouts == 1)
            second = await round_trip(conn, request(b"second"))  # the slot came free
            assert second == TERMINAL_TPDU + answer_body(request(b"second"), "A")
            await wait_until(lambda: server.stats.dropped[DropReason.ANSWER_AFTER_TIMEOUT] == 1)
            with anyio.move_on_after(0.2):
                assert await conn.receive() is None
                pytest.fail("the timed-out answer reached the terminal")
            await conn.aclose()
        members.cancel_scope.cancel()


BAD_INPUT = {
    "zero length": (b"\x00\x00", CloseReason.BAD_LENGTH),
    "oversized frame": ((65).to_bytes(2, "big") + b"\x60" * 65, CloseReason.OVERSIZED_FRAME),
    "wrong TPDU ID": (frame(b"\x61" + request()[1:]), CloseReason.BAD_TPDU_ID),
    "too short": (frame(b"\x60\x00\x03\x00\x00"), CloseReason.TOO_SHORT),
    "truncated frame": (b"\x00\x20" + request()[:8], CloseReason.TRUNCATED_FRAME),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
async def test_bad_input_closes_only_that_connection(case: str) -> None:
    data, reason = BAD_INPUT[case]
    async with anyio.create_task_group() as members:
        port, _ = await start_member(members, EchoFrontEnd("A"))
        async with running_nac(port, max_frame_len=64) as (server, ports):
            healthy = await terminal(ports.listen)
            await round_trip(healthy, request(b"before"))
            bad = await terminal(ports.listen)
            await bad.stream.send(data)
            if reason is CloseReason.TRUNCATED_FRAME:
                await bad.stream.send_eof()
            assert await bad.receive(STEP_TIMEOUT_S) is None  # closed by the NAC
            await wait_until(lambda: server.stats.closed[reason] == 1)
            answer = await round_trip(healthy, request(b"after"))
            assert answer == TERMINAL_TPDU + answer_body(request(b"after"), "A")
            await bad.aclose()
            await healthy.aclose()
        members.cancel_scope.cancel()


async def test_unknown_destination_drops_the_frame_and_keeps_the_connection() -> None:
    async with anyio.create_task_group() as members:
        port, _ = await start_member(members, EchoFrontEnd("A"))
        async with running_nac(port) as (server, ports):
            conn = await terminal(ports.listen)
            await conn.send(request(b"lost", dst="0099"))
            answer = await round_trip(conn, request(b"found"))
            assert answer == TERMINAL_TPDU + answer_body(request(b"found"), "A")
            assert server.stats.dropped[DropReason.UNKNOWN_DESTINATION] == 1
            await conn.aclose()
        members.cancel_scope.cancel()


async def test_idle_and_connection_limits() -> None:
    async with anyio.create_task_group() as members:
        port, _ = await start_member(members, EchoFrontEnd("A"))
        async with running_nac(port, idle_timeout_s=0.3, max_connections=2) as (server, ports):
            first, second = await terminal(ports.listen), await terminal(ports.listen)
            await wait_until(lambda: server.stats.connections_open == 2)
            third = await terminal(ports.listen)
            assert await third.receive(STEP_TIMEOUT_S) is None  # over the limit: closed at once
            assert server.stats.connections_rejected == 1
            await round_trip(second, request(b"keep me"))
            assert await first.receive(STEP_TIMEOUT_S) is None  # said nothing: closed when idle
            assert server.stats.closed[CloseReason.IDLE] >= 1
            for conn in (first, second, third):
                await conn.aclose()
        members.cancel_scope.cancel()


async def test_status_port_and_stats_command(capsys: pytest.CaptureFixture[str]) -> None:
    async with anyio.create_task_group() as members:
        port, _ = await start_member(members, EchoFrontEnd("A"))
        async with running_nac(port) as (server, ports):
            conn = await terminal(ports.listen)
            await round_trip(conn, request(b"counted"))
            await conn.send(request(b"lost", dst="0099"))
            await wait_until(lambda: server.stats.frames_up == 2)
            assert ports.status is not None
            document = await fetch_stats("127.0.0.1", ports.status)
            assert document["frames"] == {"up": 2, "down": 1, "forwarded": 1, "delivered": 1}
            assert document["dropped"] == {"unknown_destination": 1}
            assert document["members"][f"127.0.0.1:{port}"]["up"] is True  # type: ignore[index]

            code = await anyio.to_thread.run_sync(acqsim_main, ["nac", "--stats", f"127.0.0.1:{ports.status}"])
            assert code == 0
            printed = json.loads(capsys.readouterr().out)
            assert printed["routes"]["0003"] == {"forwarded": 1, "answered": 1, "errors": {}}
            assert printed["connections"]["open"] == 1
            await conn.aclose()
        members.cancel_scope.cancel()


async def test_requests_that_are_never_answered_are_counted_not_leaked() -> None:
    async with anyio.create_task_group() as members:
        port, _ = await start_member(members, EchoFrontEnd("A"))
        async with running_nac(port, answer_timeout_s=0.1, max_in_flight=2) as (server, ports):
            conn = await terminal(ports.listen)
            for i in range(2):
                await conn.send(request(NEVER + b"%d" % i))
            await wait_until(lambda: server.stats.answer_timeouts == 2)
            assert server.stats.in_flight == 0 and server.router.addresses_in_use == 2  # quarantined
            assert server.stats.routes["0003"].errors["answer_timeout"] == 2
            await conn.aclose()
        members.cancel_scope.cancel()


def test_cli_rejects_a_bad_route(capsys: pytest.CaptureFixture[str]) -> None:
    assert acqsim_main(["nac", "--listen", "127.0.0.1:0", "--route", "0003=nowhere"]) == 2
    assert "HOST:PORT" in capsys.readouterr().err


class RecordingTracer:
    """Collects what the NAC hands to its tracer (the same keyword interface as ``wire.trace.TraceWriter``)."""

    service = "nac"
    pending = 0
    dropped = 0

    def __init__(self) -> None:
        self.records: list[dict[str, object]] = []

    def record(self, **fields: object) -> None:
        self.records.append(fields)

    def flush_pending(self) -> int:
        return 0

    def close(self) -> None:
        pass


async def test_every_frame_is_traced_on_the_pos_link_without_correlation_id() -> None:
    tracer = RecordingTracer()
    async with anyio.create_task_group() as members:
        port, _ = await start_member(members, EchoFrontEnd("A"))
        server = NacServer(table(port), trace=tracer)
        async with anyio.create_task_group() as tg:
            ports = await tg.start(functools.partial(server.serve, "127.0.0.1", 0))
            await wait_until(lambda: server.stats.members[f"127.0.0.1:{port}"].up)
            conn = await terminal(ports.listen)
            answer = await round_trip(conn, request(b"traced"))
            await wait_until(lambda: len(tracer.records) == 4)
            await conn.aclose()
            tg.cancel_scope.cancel()
        members.cancel_scope.cancel()
    assert [(r["direction"], r["link"]) for r in tracer.records] == [("in", "pos"), ("out", "pos")] * 2
    assert all("correlation_id" not in r for r in tracer.records)
    assert tracer.records[0]["payload"] == request(b"traced")
    assert tracer.records[1]["peer"] == tracer.records[2]["peer"] == f"127.0.0.1:{port}"
    assert tracer.records[3]["payload"] == answer


async def test_a_terminal_that_stops_reading_is_closed_without_stalling_the_others() -> None:
    big = request(bytes(7000))
    async with anyio.create_task_group() as members:
        port, _ = await start_member(members, EchoFrontEnd("A"))
        async with running_nac(port, send_timeout_s=0.3, max_in_flight=4) as (server, ports):
            healthy = await terminal(ports.listen)
            deaf = await deaf_terminal(ports.listen)
            with anyio.fail_after(60):
                try:  # send for ever without reading, until the NAC gives up on this terminal
                    while server.stats.closed[CloseReason.SEND_FAILED] == 0:
                        await deaf.send(big)
                        await anyio.lowlevel.checkpoint()
                    await deaf.send(big)  # the NAC has closed it: the stream breaks sooner or later
                    await deaf.send(big)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                    pass
                answer = await round_trip(healthy, request(b"still served"))
            assert answer == TERMINAL_TPDU + answer_body(request(b"still served"), "A")
            assert server.stats.closed[CloseReason.SEND_FAILED] == 1
            assert server.stats.dropped[DropReason.TERMINAL_NOT_READING] >= 1
            assert server.stats.members[f"127.0.0.1:{port}"].disconnects == 0  # the upstream never stalled
            await deaf.aclose()
            await healthy.aclose()
        members.cancel_scope.cancel()


async def test_running_out_of_file_descriptors_pauses_accepting_and_does_not_end_the_nac(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with anyio.create_task_group() as members:
        port, _ = await start_member(members, EchoFrontEnd("A"))
        async with running_nac(port) as (server, ports):
            healthy = await terminal(ports.listen)
            await wait_until(lambda: server.stats.connections_accepted == 1)  # accepted before descriptors run out
            with one_descriptor_left():
                with caplog.at_level(logging.WARNING, logger="acqsim.net"):
                    waiting = await terminal(ports.listen)
                    await wait_until(lambda: "accept failed (EMFILE" in caplog.text)  # the runtime backs off
                assert server.stats.connections_accepted == 1
            answer = await round_trip(waiting, request(b"accepted later"))  # accepted once descriptors are back
            assert answer == TERMINAL_TPDU + answer_body(request(b"accepted later"), "A")
            assert await round_trip(healthy, request(b"meanwhile")) == TERMINAL_TPDU + answer_body(
                request(b"meanwhile"), "A"
            )
            await waiting.aclose()
            await healthy.aclose()
        members.cancel_scope.cancel()


#: Terminals transacting at once while a member dies and comes back.
MANY_TERMINALS = 8


async def test_many_terminals_keep_their_own_answers_while_a_member_dies_and_comes_back() -> None:
    lost = 0
    answered_by: collections.Counter[str] = collections.Counter()
    phase = "before"
    async with anyio.create_task_group() as members:
        port_a, kill_a = await start_member(members, EchoFrontEnd("A"))
        port_b, _ = await start_member(members, EchoFrontEnd("B"))
        async with running_nac(port_a, port_b, backoff_max_s=0.1, answer_timeout_s=0.5) as (server, ports):
            stop = anyio.Event()

            async def run_terminal(index: int) -> None:
                nonlocal lost
                conn = await terminal(ports.listen)
                number = 0
                while not stop.is_set():
                    number += 1
                    payload = request(b"t%d-r%d" % (index, number))
                    sent_in = phase  # an answer counts in the phase its request was sent in
                    await conn.send(payload)
                    answer = None
                    with anyio.move_on_after(1.0):  # the terminal's own timeout (a reversal would follow)
                        answer = await conn.receive()
                    if answer is None:
                        lost += 1
                        continue
                    assert answer[:-1] == TERMINAL_TPDU + answer_body(payload, "")  # its own, nobody else's
                    answered_by[f"{sent_in}-{member_of(answer)}"] += 1
                await conn.aclose()

            async with anyio.create_task_group() as terminals:
                for index in range(MANY_TERMINALS):
                    terminals.start_soon(run_terminal, index)
                # Each phase lasts until both members (or B alone) have answered requests sent in it.
                await wait_until(lambda: bool(answered_by["before-A"] and answered_by["before-B"]))
                phase = "dying"  # sent while A dies: either member, or lost
                kill_a.cancel()
                await wait_until(lambda: not server.stats.members[f"127.0.0.1:{port_a}"].up)
                phase = "down"  # sent once the NAC knows A is gone: only B can answer
                await wait_until(lambda: answered_by["down-B"] >= MANY_TERMINALS)
                phase = "restarting"
                await start_member(members, EchoFrontEnd("A"), port=port_a)
                await wait_until(lambda: server.stats.members[f"127.0.0.1:{port_a}"].up)
                phase = "after"
                await wait_until(lambda: bool(answered_by["after-A"] and answered_by["after-B"]))
                stop.set()
            assert lost == server.stats.dropped_on_link_failure + server.stats.answer_timeouts
        members.cancel_scope.cancel()
    assert answered_by["before-A"] and answered_by["before-B"]
    assert answered_by["down-B"] and not answered_by["down-A"]
    assert answered_by["after-A"] and answered_by["after-B"]


class GarbageFrontEnd(EchoFrontEnd):
    """Answers its first request with a zero length prefix (a stream out of step), then behaves."""

    async def handle(self, conn: FramedConnection) -> None:
        if self.answered == 0 and await conn.receive() is not None:
            self.answered += 1
            await conn.stream.send(b"\x00\x00")
            return
        await super().handle(conn)


async def test_a_front_end_out_of_step_is_reconnected_and_its_request_counted() -> None:
    async with anyio.create_task_group() as members:
        port, _ = await start_member(members, GarbageFrontEnd("G"))
        async with running_nac(port, backoff_max_s=0.05) as (server, ports):
            conn = await terminal(ports.listen)
            await conn.send(request(b"first"))
            await wait_until(lambda: server.stats.members[f"127.0.0.1:{port}"].connects == 2)
            assert server.stats.dropped_on_link_failure == 1  # the terminal's timeout and reversal take over
            answer = await round_trip(conn, request(b"second"))
            assert answer == TERMINAL_TPDU + answer_body(request(b"second"), "G")
            await conn.aclose()
        members.cancel_scope.cancel()
