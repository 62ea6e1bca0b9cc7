"""The NAC on the runtime's serving: junk that front-ends never answer costs only its sender, the status
port survives bad input, and answer timeouts fire at the router's deadline."""

from __future__ import annotations

import logging

import anyio
import pytest

from nac.events import CloseReason
from nac.status import fetch_stats
from tests.nac.helpers import request
from tests.nac.netkit import (
    NEVER,
    SLOW,
    STEP_TIMEOUT_S,
    EchoFrontEnd,
    answer_body,
    round_trip,
    running_nac,
    start_member,
    terminal,
    wait_until,
)

pytestmark = pytest.mark.anyio

TERMINAL_TPDU = bytes.fromhex("6000000003")
#: The junk times out at 1.0 s; the honest request, sent at 0.7 s and answered 0.6 s later (SLOW), is still
#: in flight then (0.3 s after the junk's deadline and 0.4 s before its own).
ANSWER_TIMEOUT_S = 1.0
HONEST_AFTER_S = 0.7
STALE_LIMIT = 3


async def test_unanswered_junk_recycles_the_link_without_dropping_anyone_elses_request() -> None:
    """Front-ends answer nothing to a frame they cannot decode; enough of them used to make the NAC cut the
    upstream connection, dropping every other terminal's request in flight on it."""
    front_end = EchoFrontEnd("A")
    async with anyio.create_task_group() as members:
        port, _ = await start_member(members, front_end)
        async with running_nac(
            port, answer_timeout_s=ANSWER_TIMEOUT_S, max_stale_per_link=STALE_LIMIT, max_in_flight=8
        ) as (server, ports):
            junk_sender = await terminal(ports.listen)
            for n in range(STALE_LIMIT + 1):
                await junk_sender.send(request(NEVER + b" junk %d" % n))
            await anyio.sleep(HONEST_AFTER_S)  # spaces the scenario (see HONEST_AFTER_S); not a synchronisation
            honest = await terminal(ports.listen)
            await honest.send(request(SLOW + b" purchase"))  # answered after 0.6 s, still in time
            await wait_until(lambda: server.stats.closed[CloseReason.STALE_ADDRESSES] == 1)
            with anyio.fail_after(STEP_TIMEOUT_S):
                answer = await honest.receive()
            assert answer == TERMINAL_TPDU + answer_body(request(SLOW + b" purchase"), "A")
            assert server.stats.dropped_on_link_failure == 0
            member = server.stats.members[f"127.0.0.1:{port}"]
            await wait_until(lambda: member.connects == 2 and server.router.addresses_in_use == 0)
            assert member.up
            assert await round_trip(honest, request(b"next")) == TERMINAL_TPDU + answer_body(request(b"next"), "A")
            await junk_sender.aclose()
            await honest.aclose()
        members.cancel_scope.cancel()


async def test_the_status_port_survives_bad_input_and_keeps_answering() -> None:
    async with anyio.create_task_group() as members:
        port, _ = await start_member(members, EchoFrontEnd("A"))
        async with running_nac(port) as (_, ports):
            assert ports.status is not None
            for junk in (b"\xff" * 70000, b"\x00\x05GET /", b""):
                stream = await anyio.connect_tcp("127.0.0.1", ports.status)
                try:
                    if junk:
                        await stream.send(junk)
                except (anyio.BrokenResourceError, OSError):
                    pass  # the NAC answered and closed while we were still writing
                await stream.aclose()
            document = await fetch_stats("127.0.0.1", ports.status)
            assert "connections" in document
        members.cancel_scope.cancel()


async def test_an_unanswered_request_times_out_at_its_deadline() -> None:
    async with anyio.create_task_group() as members:
        port, _ = await start_member(members, EchoFrontEnd("A"))
        async with running_nac(port, answer_timeout_s=0.2) as (server, ports):
            conn = await terminal(ports.listen)
            sent_at = anyio.current_time()
            await conn.send(request(NEVER))
            await wait_until(lambda: server.stats.answer_timeouts == 1)
            assert anyio.current_time() - sent_at < 0.2 + 0.15  # at the deadline, not at a polling tick
            await conn.aclose()
        members.cancel_scope.cancel()


async def test_asyncio_serves_terminals_on_the_callback_path_and_trio_on_the_task_path(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "acqsim.net")
    async with anyio.create_task_group() as members:
        port, _ = await start_member(members, EchoFrontEnd("A"))
        async with running_nac(port) as (_, ports):
            conn = await terminal(ports.listen)
            assert await round_trip(conn, request(b"x")) == TERMINAL_TPDU + answer_body(request(b"x"), "A")
            await conn.aclose()
        members.cancel_scope.cancel()
    prefix = f"NAC listening on 127.0.0.1:{ports.listen} "
    listening = [r.getMessage() for r in caplog.records if r.name == "acqsim.net" and r.getMessage().startswith(prefix)]
    assert len(listening) == 1
    assert ("callbacks" in listening[0]) == (anyio_backend == "asyncio")
