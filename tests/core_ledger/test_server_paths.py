"""The ledger's host-link server on both of its shells, over real loopback TCP and a real SQLite store: the callback
path (asyncio, plain TCP) and the task path (trio; and asyncio under mutual TLS). Pipelined requests sharing a
group commit and answered in order, bad frames answered 30 or dropped while the others are served, rules
(answer, drop, delay, answer twice, close), the idle timeout, a peer that does not read (the send timeout), and
the fail-stop on a failed commit."""

from __future__ import annotations

import asyncio.trsock
import dataclasses
import logging
import socket
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import anyio.abc
import pytest

import core_ledger.callbackshell
import core_ledger.server
import core_ledger.taskshell
from acqkit import netio
from acqkit.config import AcqsimConfig
from acqkit.frameprotocol import FrameConnection, FrameSession, SessionFactory
from acqkit.rules import RuleBook
from acqkit.serving import PLAIN, Serving
from acqkit.tls import client_context, server_context
from core_ledger.api import LedgerOp, LedgerRequest
from core_ledger.check import check_store
from core_ledger.hostcore import HostCore
from core_ledger.hostlink import request_fields
from core_ledger.server import serve
from core_ledger.service import LedgerFailStop, LedgerService
from core_ledger.setup import open_service
from core_ledger.taskshell import Limits
from tests.core_ledger.helpers import request
from tests.shellmodes import MODES, ON_EVERY_SHELL
from tests.streamframes import frames_until_end
from wire.codec import decode_host, encode_host
from wire.framing import frame

pytestmark = [pytest.mark.anyio, ON_EVERY_SHELL]

HOST = "127.0.0.1"
DEADLINE_S = 10.0
#: The ledger's kernel send buffer to a peer that does not read (bytes; the kernel doubles it).
SMALL_SEND_BUFFER = 4096
GOOD = "6200001000000003"
OPENING_BALANCE = 50_000_000
RULES = """
[[rule]]
at = "ledger"
amount_min = 101
amount_max = 101
action = "answer"
code = "51"

[[rule]]
at = "ledger"
amount_min = 102
amount_max = 102
action = "drop"

[[rule]]
at = "ledger"
amount_min = 103
amount_max = 103
action = "delay"
delay_s = 0.2

[[rule]]
at = "ledger"
amount_min = 104
amount_max = 104
action = "answer_twice"

[[rule]]
at = "ledger"
amount_min = 105
amount_max = 105
action = "close"
"""


@dataclasses.dataclass
class RunningLedger:
    port: int
    service: LedgerService
    client_tls: ssl.SSLContext | None  # the front-end's, under TLS
    #: What ``serve`` ended with, once it ended by itself (a fail-stop).
    stopped: list[BaseException]
    ended: anyio.Event

    async def open(self) -> netio.FramedConnection:
        return await netio.connect(HOST, self.port, timeout=DEADLINE_S, tls=self.client_tls)

    async def open_stream(self) -> anyio.abc.ByteStream:
        """A connection that reads nothing until asked (anyio's own: ``netio.connect`` reads ahead)."""
        if self.client_tls is None:
            return await anyio.connect_tcp(HOST, self.port)
        return await anyio.connect_tcp(HOST, self.port, ssl_context=self.client_tls, tls_hostname=HOST)

    @property
    def balance(self) -> int:
        state = self.service.state
        return state.accounts[state.cards[GOOD].account_id].balance


@asynccontextmanager
async def running_ledger(
    mode: str, tls_ca_dir: Path, tmp_path: Path, rules: RuleBook | None = None
) -> AsyncIterator[RunningLedger]:
    """A ledger over a fresh SQLite store in ``mode``."""
    tls = MODES[mode][1]
    serving = Serving(server_tls=server_context(tls_ca_dir, "ledger")) if tls else PLAIN
    client_tls = client_context(tls_ca_dir, "frontend") if tls else None
    service = open_service(str(tmp_path / "ledger.sqlite3"), AcqsimConfig.default(data_dir=tmp_path))
    running = RunningLedger(0, service, client_tls, [], anyio.Event())

    async def serving_until_stopped(*, task_status: anyio.abc.TaskStatus[int]) -> None:
        try:
            await serve(HOST, 0, service=service, serving=serving, rules=rules, task_status=task_status)
        except LedgerFailStop as exc:
            running.stopped.append(exc)
        finally:
            running.ended.set()

    async with anyio.create_task_group() as tg:
        running.port = await tg.start(serving_until_stopped)
        yield running
        tg.cancel_scope.cancel()
    service.store.close()


def purchase(amount: int) -> LedgerRequest:
    return request(LedgerOp.PURCHASE, GOOD, amount)


def payload(req: LedgerRequest) -> bytes:
    return encode_host(request_fields(req))


async def answer_of(conn: netio.FramedConnection) -> tuple[str, str] | None:
    """The next answer's RRN and response code; ``None`` once the ledger closed the connection."""
    raw = await conn.receive(DEADLINE_S)
    if raw is None:
        return None
    fields = decode_host(raw)
    return fields["37"], fields["39"]


async def test_the_shell_in_use(mode: str, tls_ca_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "acqsim.net")
    async with running_ledger(mode, tls_ca_dir, tmp_path) as ledger:
        conn = await ledger.open()
        buy = purchase(100)
        await conn.send(payload(buy))
        assert await answer_of(conn) == (buy.rrn, "00")
        await conn.aclose()
    listening = [r.getMessage() for r in caplog.records if "ledger listening on" in r.getMessage()]
    assert len(listening) == 1 and ("callbacks" in listening[0]) is (mode == "callbacks")


async def test_pipelined_requests_share_a_commit_and_are_answered_in_order(
    mode: str, tls_ca_dir: Path, tmp_path: Path
) -> None:
    buys = [purchase(10 + i) for i in range(40)]
    async with running_ledger(mode, tls_ca_dir, tmp_path) as ledger:
        conn = await ledger.open()
        await conn.send_many([payload(buy) for buy in buys])  # one write: pipelined
        answers = [await answer_of(conn) for _ in buys]
        assert answers == [(buy.rrn, "00") for buy in buys]  # in request order
        assert ledger.service.batches < len(buys)  # they shared commits
        assert ledger.balance == OPENING_BALANCE - sum(buy.amount for buy in buys)
        await conn.aclose()
        assert check_store(ledger.service.store) == []


@pytest.mark.parametrize("slots", [256, 3], ids=["slots-free", "3-slots"])
async def test_a_peer_that_ends_its_side_gets_every_answer_before_the_end(
    mode: str, tls_ca_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slots: int
) -> None:
    """A peer may send its requests and then end its side of the connection (a half-close): every request it sent
    is posted and answered, in order, and only then does the ledger close — also when most of them wait for a
    free slot behind the end of its input."""
    if MODES[mode][1]:
        pytest.skip("a TLS stream has no half-close (anyio's TLSStream.send_eof)")
    monkeypatch.setattr(core_ledger.server, "MAX_IN_FLIGHT_PER_CONNECTION", slots)
    buys = [purchase(10 + i) for i in range(20)]
    async with running_ledger(mode, tls_ca_dir, tmp_path) as ledger:
        stream = await ledger.open_stream()  # written at once (a framed connection gathers to the loop turn's end)
        await stream.send(b"".join(frame(payload(buy)) for buy in buys))
        await stream.send_eof()
        answers = [(f["37"], f["39"]) for f in map(decode_host, await frames_until_end(stream, DEADLINE_S))]
        assert answers == [(buy.rrn, "00") for buy in buys]  # every one, in order, then the end
        assert ledger.balance == OPENING_BALANCE - sum(buy.amount for buy in buys)
        await stream.aclose()


async def test_requests_beyond_the_in_flight_limit_wait_for_slots_and_keep_their_order(
    mode: str, tls_ca_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With 3 slots a connection, 20 pipelined requests: the ledger reads no more than 3 ahead of its answers
    (callbacks: the rest of a read is held and reading paused; tasks: the reader waits for a slot), and every one
    is answered, in order."""
    monkeypatch.setattr(core_ledger.server, "MAX_IN_FLIGHT_PER_CONNECTION", 3)
    buys = [purchase(10 + i) for i in range(20)]
    async with running_ledger(mode, tls_ca_dir, tmp_path) as ledger:
        conn = await ledger.open()
        await conn.send_many([payload(buy) for buy in buys])
        answers = [await answer_of(conn) for _ in buys]
        assert answers == [(buy.rrn, "00") for buy in buys]
        assert ledger.service.batches >= len(buys) / 3  # at most 3 of them in any one commit
        await conn.aclose()


def _with_bad_field_48(good: bytes) -> bytes:
    """``good`` with field 48 (after 32 and 37) given a length its bytes do not have: undecodable at 48."""
    fields = decode_host(good)
    fields["48"] = "X"
    body = encode_host(fields)
    return body[:-1] if body.endswith(b"X") else body.replace(b"001X", b"009X")


async def test_bad_frames_cost_only_themselves(mode: str, tls_ca_dir: Path, tmp_path: Path) -> None:
    """Between good requests on one connection: a request without what its operation needs and one whose field
    after 32 and 37 does not decode are answered 30; one without even an MTI is dropped; the rest are served."""
    first, last, bad = purchase(10), purchase(20), purchase(30)
    lacking = {"t": "0200", "3": "000000", "11": "000001", "32": "123456", "37": "LACKING00001"}
    async with running_ledger(mode, tls_ca_dir, tmp_path) as ledger:
        conn = await ledger.open()
        await conn.send_many(
            [payload(first), encode_host(lacking), b"no MTI at all", _with_bad_field_48(payload(bad)), payload(last)]
        )
        answers = {await answer_of(conn) for _ in range(4)}  # a 30 is answered on its own: in any order
        assert answers == {(first.rrn, "00"), ("LACKING00001", "30"), (bad.rrn, "30"), (last.rrn, "00")}
        assert ledger.balance == OPENING_BALANCE - 10 - 20  # the bad ones posted nothing
        again = purchase(40)
        await conn.send(payload(again))  # the connection carries on
        assert await answer_of(conn) == (again.rrn, "00")
        await conn.aclose()


async def test_rules_answer_drop_delay_answer_twice_and_close(mode: str, tls_ca_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "rules.toml").write_text(RULES)
    rules = RuleBook(tmp_path / "rules.toml", "ledger")
    scripted, dropped, delayed, twice, plain = (purchase(amount) for amount in (101, 102, 103, 104, 100))
    async with running_ledger(mode, tls_ca_dir, tmp_path, rules) as ledger:
        conn = await ledger.open()
        await conn.send_many([payload(r) for r in (scripted, dropped, delayed, twice, plain)])
        answers = [await answer_of(conn) for _ in range(5)]
        assert sorted(answers[:4], key=str) == sorted(
            [(scripted.rrn, "51"), (twice.rrn, "00"), (twice.rrn, "00"), (plain.rrn, "00")], key=str
        )
        assert answers[4] == (delayed.rrn, "00")  # 0.2 s later: last
        assert ledger.balance == OPENING_BALANCE - 103 - 104 - 100  # the scripted and dropped ones: not posted

        before, closing, after = purchase(100), purchase(105), purchase(100)
        await conn.send_many([payload(before), payload(closing), payload(after)])
        assert await answer_of(conn) == (before.rrn, "00")  # in flight when the rule closed: answered first
        assert await answer_of(conn) is None  # then closed: the closing request and the one after it unanswered
        await conn.aclose()
        assert ledger.balance == OPENING_BALANCE - 103 - 104 - 100 - 100  # ... and not posted

        other = await ledger.open()  # the ledger serves on
        await other.send(payload(plain))  # a repeat: its first answer, nothing posted
        assert await answer_of(other) == (plain.rrn, "00")
        await other.aclose()
        assert ledger.balance == OPENING_BALANCE - 103 - 104 - 100 - 100


async def test_an_idle_connection_is_closed(
    mode: str, tls_ca_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(core_ledger.server, "IDLE_TIMEOUT_S", 0.3)
    monkeypatch.setattr(core_ledger.server, "IDLE_SLACK_S", 0.05)
    async with running_ledger(mode, tls_ca_dir, tmp_path) as ledger:
        conn = await ledger.open()
        buy = purchase(100)
        await conn.send(payload(buy))
        assert await answer_of(conn) == (buy.rrn, "00")
        silent_since = anyio.current_time()
        assert await answer_of(conn) is None  # closed by the ledger
        assert anyio.current_time() - silent_since >= 0.3 - 0.05  # not before the idle timeout (timer slack)
        await conn.aclose()


def _shrink_send_buffer(sock: socket.socket | asyncio.trsock.TransportSocket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_SEND_BUFFER)


@pytest.fixture
def small_server_send_buffers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ledger's connections get a small kernel send buffer on both paths: the kernel's own grows to megabytes,
    which small answers at one commit per 256 requests fill only after many seconds."""
    sessions_of = core_ledger.callbackshell.session_factory
    handler_of = core_ledger.taskshell.task_handler

    def sessions(core: HostCore, max_in_flight: int) -> SessionFactory:
        open_session = sessions_of(core, max_in_flight)

        def shrunk(conn: FrameConnection) -> FrameSession | None:
            _shrink_send_buffer(conn._transport.get_extra_info("socket"))  # type: ignore[union-attr]
            return open_session(conn)

        return shrunk

    def handler(core: HostCore, limits: Limits) -> netio.ConnectionHandler:
        handle = handler_of(core, limits)

        async def shrunk(conn: netio.FramedConnection) -> None:
            _shrink_send_buffer(conn.stream.extra(anyio.abc.SocketAttribute.raw_socket))
            await handle(conn)

        return shrunk

    monkeypatch.setattr(core_ledger.server, "session_factory", sessions)
    monkeypatch.setattr(core_ledger.server, "task_handler", handler)


@pytest.mark.usefixtures("small_server_send_buffers")
async def test_a_peer_that_does_not_read_is_cut_off_at_the_send_timeout(
    mode: str, tls_ca_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A peer that only writes: once its answers fill the buffers, the ledger stops reading that connection and
    drops it when the send timeout passes; another peer is served all along. Its requests are ones a rule answers
    (51, nothing posted), so the buffers fill at the codec's pace, not at one group commit per 256 requests."""
    monkeypatch.setattr(core_ledger.server, "SEND_TIMEOUT_S", 0.3)
    (tmp_path / "rules.toml").write_text(RULES)
    async with running_ledger(mode, tls_ca_dir, tmp_path, RuleBook(tmp_path / "rules.toml", "ledger")) as ledger:
        reader = await ledger.open()
        stuck = await ledger.open_stream()
        try:
            batch = b"".join(frame(payload(purchase(101))) for _ in range(200))
            sent = 0
            with anyio.fail_after(DEADLINE_S), pytest.raises((anyio.BrokenResourceError, anyio.ClosedResourceError)):
                while True:  # never reads: the ledger ends this connection, and a write meets that
                    await stuck.send(batch)
                    sent += 200
            assert sent > 200
            buy = purchase(100)
            await reader.send(payload(buy))
            assert await answer_of(reader) == (buy.rrn, "00")
        finally:
            await stuck.aclose()
            await reader.aclose()
        assert ledger.balance == OPENING_BALANCE - 100  # the scripted answers posted nothing


async def test_a_failed_commit_answers_96_and_stops_the_server(mode: str, tls_ca_dir: Path, tmp_path: Path) -> None:
    async with running_ledger(mode, tls_ca_dir, tmp_path) as ledger:
        conn = await ledger.open()
        kept, lost = purchase(300), purchase(400)
        await conn.send(payload(kept))
        assert await answer_of(conn) == (kept.rrn, "00")
        ledger.service.store.close()  # every later statement fails like a lost database
        await conn.send(payload(lost))
        assert await answer_of(conn) == (lost.rrn, "96")
        with anyio.fail_after(DEADLINE_S):
            await ledger.ended.wait()  # serve ends by itself: the process exits and is restarted
        assert [type(exc) for exc in ledger.stopped] == [LedgerFailStop]
        assert await answer_of(conn) is None  # its connections went with it
        await conn.aclose()
