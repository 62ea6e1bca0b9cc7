"""The peer-client base: typed errors naming the peer and its address, from real refused and silent peers."""

from __future__ import annotations

import functools

import anyio
import pytest

from acqkit.netio import FramedConnection, serve_tcp
from acqkit.peerclient import PeerClient, PeerTimeout, PeerUnavailable
from core_ledger.client import LedgerClient, LedgerUnavailable
from hsm_sim.client import HsmClient, HsmTimeout, HsmUnavailable
from tests.cli_helpers import closed_port

pytestmark = pytest.mark.anyio

HOST = "127.0.0.1"
SHORT_TIMEOUT_S = 0.3


class EchoClient(PeerClient[bytes, bytes]):
    PEER = "echo"
    SERVICE_NAME = "echo"
    DEFAULT_TIMEOUT_S = SHORT_TIMEOUT_S

    def decode_answer(self, payload: bytes) -> tuple[bytes, bytes]:
        return payload[:1], payload


async def test_a_refused_connect_is_peer_unavailable_naming_peer_address_and_action() -> None:
    port = closed_port()
    with pytest.raises(PeerUnavailable) as info:
        await EchoClient.connect(HOST, port)
    assert (info.value.peer, info.value.address, info.value.action) == ("echo", f"{HOST}:{port}", "connect")
    assert str(info.value).startswith(f"echo at {HOST}:{port}: connect: ")


@pytest.mark.parametrize(
    ("client_type", "unavailable"), [(LedgerClient, LedgerUnavailable), (HsmClient, HsmUnavailable)]
)
async def test_each_service_client_raises_its_own_type_which_is_also_the_runtimes(
    client_type: type[PeerClient[object, object]], unavailable: type[Exception]
) -> None:
    port = closed_port()
    with pytest.raises(unavailable) as info:
        await client_type.connect(HOST, port, timeout=SHORT_TIMEOUT_S)
    assert isinstance(info.value, PeerUnavailable)
    assert info.value.address == f"{HOST}:{port}"


async def test_a_silent_peer_is_peer_timeout_and_echoes_are_answered() -> None:
    async def echo_unless_silent(conn: FramedConnection) -> None:
        while (payload := await conn.receive(5.0)) is not None:
            if not payload.startswith(b"s"):
                await conn.send(payload)

    async with anyio.create_task_group() as tg:
        port = await tg.start(functools.partial(serve_tcp, HOST, 0, echo_unless_silent, name="echo"))
        async with await EchoClient.connect(HOST, port) as client:
            assert await client.exchange([(b"e", b"echo me")], action="echo") == [b"echo me"]
            with pytest.raises(PeerTimeout) as info:
                await client.exchange([(b"s", b"silence")], action="hush")
            assert (info.value.action, info.value.reason) == ("hush", "no answer in time")
        tg.cancel_scope.cancel()


async def test_the_hsm_timeout_is_both_hsm_unavailable_and_peer_timeout() -> None:
    error = HsmTimeout("NC", "timed out", address="127.0.0.1:1")
    assert isinstance(error, HsmUnavailable)
    assert isinstance(error, PeerTimeout)
    assert (error.command, error.error_code, error.address) == ("NC", "--", "127.0.0.1:1")


#: Far longer than any step here takes; a wait that reaches it is a failure, not a timing.
STEP_TIMEOUT_S = 5.0


async def test_an_answer_past_the_deadline_is_peer_timeout_and_the_link_serves_the_next_request() -> None:
    """The deadline of an exchange (on asyncio a timer of the loop, on trio a cancel scope) ends that exchange
    only: the link stays open and its late answer reaches nobody."""
    released = anyio.Event()

    async def late_then_echo(conn: FramedConnection) -> None:
        slow = await conn.receive(STEP_TIMEOUT_S)
        assert slow is not None
        await released.wait()
        await conn.send(slow)  # its caller gave up meanwhile
        while (payload := await conn.receive(STEP_TIMEOUT_S)) is not None:
            await conn.send(payload)

    async with anyio.create_task_group() as tg:
        port = await tg.start(functools.partial(serve_tcp, HOST, 0, late_then_echo, name="echo"))
        async with await EchoClient.connect(HOST, port, timeout=STEP_TIMEOUT_S) as client:
            generation = client.generation
            with pytest.raises(PeerTimeout):
                await client.exchange([(b"s", b"slow")], action="slow", timeout=0.05)
            released.set()
            assert await client.exchange([(b"n", b"next")], action="echo") == [b"next"]
            assert client.generation == generation
        tg.cancel_scope.cancel()


async def test_an_exchange_cancelled_from_outside_is_cancelled_not_timed_out() -> None:
    answer = anyio.Event()

    async def echo_when_told(conn: FramedConnection) -> None:
        while (payload := await conn.receive(STEP_TIMEOUT_S)) is not None:
            if payload.startswith(b"w"):
                await answer.wait()
            await conn.send(payload)

    async with anyio.create_task_group() as tg:
        port = await tg.start(functools.partial(serve_tcp, HOST, 0, echo_when_told, name="echo"))
        async with await EchoClient.connect(HOST, port, timeout=STEP_TIMEOUT_S) as client:
            with anyio.move_on_after(0.05) as scope:
                await client.exchange([(b"w", b"wait")], action="wait")
            assert scope.cancelled_caught
            answer.set()
            with anyio.fail_after(STEP_TIMEOUT_S):
                assert await client.exchange([(b"e", b"echo")], action="echo") == [b"echo"]
        tg.cancel_scope.cancel()


async def test_a_request_on_a_connection_found_dead_is_sent_once_more_on_a_fresh_one() -> None:
    """The peer restarted behind a connection the client had open: the request goes once more on a new one."""
    connections = 0

    async def hang_up_on_the_second_request_of_the_first_connection(conn: FramedConnection) -> None:
        nonlocal connections
        connections += 1
        first = connections == 1
        served = 0
        while (payload := await conn.receive(STEP_TIMEOUT_S)) is not None:
            served += 1
            if first and served == 2:
                await conn.aclose()  # read, never answered
                return
            await conn.send(payload)

    async with anyio.create_task_group() as tg:
        port = await tg.start(
            functools.partial(serve_tcp, HOST, 0, hang_up_on_the_second_request_of_the_first_connection, name="echo")
        )
        async with await EchoClient.connect(HOST, port, timeout=STEP_TIMEOUT_S) as client:
            assert await client.exchange([(b"a", b"a1")], action="echo") == [b"a1"]
            assert await client.exchange([(b"b", b"b2")], action="echo") == [b"b2"]
            assert (connections, client.generation) == (2, 2)
        tg.cancel_scope.cancel()
