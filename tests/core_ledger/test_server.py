"""The ledger's host-link server and client over real loopback TCP, on both anyio backends."""

from __future__ import annotations

import functools
from pathlib import Path

import anyio
import anyio.abc
import psycopg
import pytest
from anyio.abc import TaskStatus

import core_ledger.server
from acqkit.config import AcqsimConfig
from core_ledger.api import LedgerAnswer, LedgerOp
from core_ledger.check import check_store
from core_ledger.client import LedgerClient, LedgerTimeout, LedgerUnavailable
from core_ledger.engine import LedgerEngine
from core_ledger.hostlink import request_fields
from core_ledger.postgres_store import PostgresStore
from core_ledger.seed import CardSeed, MerchantSeed
from core_ledger.server import serve
from core_ledger.service import LedgerFailStop, LedgerService
from core_ledger.setup import open_service, seed
from core_ledger.store import LedgerStore
from tests.core_ledger.conftest import StoreFactory
from tests.core_ledger.helpers import NOW, FailStopWatch, request, seeded_state
from wire.codec import decode_host, encode_host
from wire.constants import ResponseCode
from wire.framing import frame

pytestmark = pytest.mark.anyio
GOOD = "6200001000000003"


async def test_concurrent_purchases_group_commit_and_restart(tmp_path: Path) -> None:
    db = str(tmp_path / "ledger.sqlite3")
    service = open_service(db, AcqsimConfig.default(data_dir=tmp_path))
    requests = [request(LedgerOp.PURCHASE, GOOD, 100) for _ in range(40)]
    async with anyio.create_task_group() as tg:
        port = await tg.start(functools.partial(serve, "127.0.0.1", 0, service=service))
        async with await LedgerClient.connect("127.0.0.1", port) as client:
            answers = []

            async def buy(i: int) -> None:
                answers.append(await client.submit(requests[i]))

            async with anyio.create_task_group() as buyers:
                for i in range(len(requests)):
                    buyers.start_soon(buy, i)
            assert [a.response_code for a in answers] == [ResponseCode.APPROVED] * 40
            repeat = await client.submit(requests[0])
            assert repeat.response_code is ResponseCode.APPROVED
            balance = await client.submit(request(LedgerOp.BALANCE, GOOD))
            assert balance.balance == 50_000_000 - 40 * 100

            # A decodable message without what the operation needs is answered 30.
            conn = await anyio.connect_tcp("127.0.0.1", port)
            await conn.send(frame(encode_host({"t": "0200", "3": "000000", "11": "000001"})))
            with anyio.fail_after(5):
                raw = await conn.receive()
            assert decode_host(raw[2:])["39"] == "30"
            await conn.aclose()
        assert service.batches < 40  # concurrent requests shared commits
        tg.cancel_scope.cancel()
    service.store.close()

    reopened = open_service(db, AcqsimConfig.default(data_dir=tmp_path))
    account = reopened.state.accounts[reopened.state.cards[GOOD].account_id]
    assert account.balance == 50_000_000 - 40 * 100  # nothing committed was lost, nothing doubled
    reopened.store.close()


async def _serve_until(service: LedgerService, port: int, stop: anyio.Event, *, task_status: TaskStatus[int]) -> None:
    async with anyio.create_task_group() as tg:
        bound = await tg.start(functools.partial(serve, "127.0.0.1", port, service=service))
        task_status.started(bound)
        await stop.wait()
        tg.cancel_scope.cancel()


async def test_duplicates_in_flight_and_request_after_ledger_restart(tmp_path: Path) -> None:
    db = str(tmp_path / "ledger.sqlite3")
    config = AcqsimConfig.default(data_dir=tmp_path)
    service = open_service(db, config)
    buy = request(LedgerOp.PURCHASE, GOOD, 700)
    async with anyio.create_task_group() as tg:
        stop = anyio.Event()
        port = await tg.start(functools.partial(_serve_until, service, 0, stop))
        client = await LedgerClient.connect("127.0.0.1", port)
        answers: list[LedgerAnswer] = []

        async def send() -> None:
            answers.append(await client.submit(buy))

        async with anyio.create_task_group() as senders:  # the same request twice at once, one connection
            senders.start_soon(send)
            senders.start_soon(send)
        assert [a.response_code for a in answers] == [ResponseCode.APPROVED] * 2
        assert answers[0] == answers[1]
        stop.set()
    service.store.close()

    # The ledger restarts on the same port; the client's old connection is dead and is replaced.
    service = open_service(db, config)
    assert service.state.accounts[service.state.cards[GOOD].account_id].balance == 50_000_000 - 700
    async with anyio.create_task_group() as tg:
        stop = anyio.Event()
        await tg.start(functools.partial(_serve_until, service, port, stop))
        again = await client.submit(buy)  # a repeat after the restart: the first answer, nothing posted
        assert again == answers[0]
        balance = await client.submit(request(LedgerOp.BALANCE, GOOD))
        assert balance.balance == 50_000_000 - 700
        await client.aclose()
        stop.set()
    assert check_store(service.store) == []
    service.store.close()


async def test_client_reports_unavailable_and_timeout(tmp_path: Path) -> None:
    with anyio.fail_after(10):
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        await listener.aclose()
        with pytest.raises(LedgerUnavailable):
            await LedgerClient.connect("127.0.0.1", port)
        # A peer that accepts but never answers: the caller gets LedgerTimeout (and must reverse).
        silent = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        port = silent.extra(anyio.abc.SocketAttribute.local_port)
        accepted: list[anyio.abc.SocketStream] = []

        async def hold(stream: anyio.abc.SocketStream) -> None:
            accepted.append(stream)
            await anyio.sleep_forever()

        async with silent, anyio.create_task_group() as tg:
            tg.start_soon(silent.serve, hold)
            async with await LedgerClient.connect("127.0.0.1", port, timeout=0.3) as client:
                with pytest.raises(LedgerTimeout):
                    await client.submit(request(LedgerOp.PURCHASE, GOOD, 1))
            tg.cancel_scope.cancel()
        for stream in accepted:
            await stream.aclose()


async def test_malformed_frame_while_others_are_in_flight(tmp_path: Path) -> None:
    service = open_service(str(tmp_path / "ledger.sqlite3"), AcqsimConfig.default(data_dir=tmp_path))
    async with anyio.create_task_group() as tg:
        port = await tg.start(functools.partial(serve, "127.0.0.1", 0, service=service))
        async with await LedgerClient.connect("127.0.0.1", port) as client:
            codes: list[ResponseCode] = []

            async def buy() -> None:
                codes.append((await client.submit(request(LedgerOp.PURCHASE, GOOD, 10))).response_code)

            async def garbage() -> None:  # on a connection of its own: it costs nobody else anything
                rogue = await anyio.connect_tcp("127.0.0.1", port)
                await rogue.send(frame(b"0200" + b"\xff" * 40))
                await rogue.aclose()

            async with anyio.create_task_group() as senders:
                for _ in range(20):
                    senders.start_soon(buy)
                senders.start_soon(garbage)
                for _ in range(20):
                    senders.start_soon(buy)
            assert codes == [ResponseCode.APPROVED] * 40
        tg.cancel_scope.cancel()
    assert check_store(service.store) == []
    service.store.close()


def _with_bad_field_48(good: bytes) -> bytes:
    """``good`` with field 48 (after 32 and 37) given a length its bytes do not have: undecodable at 48."""
    fields = decode_host(good)
    fields["48"] = "X"
    body = encode_host(fields)
    return body[:-1] if body.endswith(b"X") else body.replace(b"001X", b"009X")


async def test_bad_frames_cost_only_themselves_on_a_pipelined_connection(tmp_path: Path) -> None:
    """Good requests pipelined around bad frames on ONE connection all get their answers; a bad frame whose
    MTI, 32 and 37 can be read is answered 30, one without them is dropped; the connection stays up."""
    service = open_service(str(tmp_path / "ledger.sqlite3"), AcqsimConfig.default(data_dir=tmp_path))
    goods = [request(LedgerOp.PURCHASE, GOOD, 10) for _ in range(6)]
    bad_answerable = request(LedgerOp.PURCHASE, GOOD, 10)
    bad_frames = [
        b"not an ISO message",  # no MTI: dropped
        b"0200" + b"\xff" * 40,  # MTI but no bitmap, no 32 / 37: dropped
        _with_bad_field_48(encode_host(request_fields(bad_answerable))),  # 32 and 37 readable: answered 30
    ]
    payloads = [encode_host(request_fields(goods[0]))]
    for bad, good in zip(bad_frames, goods[1:4], strict=True):
        payloads += [bad, encode_host(request_fields(good))]
    payloads += [encode_host(request_fields(good)) for good in goods[4:]]
    async with anyio.create_task_group() as tg:
        port = await tg.start(functools.partial(serve, "127.0.0.1", 0, service=service))
        stream = await anyio.connect_tcp("127.0.0.1", port)
        await stream.send(b"".join(frame(p) for p in payloads))  # all at once: pipelined
        answers: dict[str, str] = {}
        buffer = b""
        with anyio.fail_after(10):
            while len(answers) < len(goods) + 1:
                buffer += await stream.receive()
                while len(buffer) >= 2 and len(buffer) >= 2 + int.from_bytes(buffer[:2], "big"):
                    size = int.from_bytes(buffer[:2], "big")
                    fields = decode_host(buffer[2 : 2 + size])
                    buffer = buffer[2 + size :]
                    answers[fields["37"]] = fields["39"]
        await stream.aclose()
        tg.cancel_scope.cancel()
    assert {g.rrn: answers.get(g.rrn) for g in goods} == {g.rrn: "00" for g in goods}
    assert answers[bad_answerable.rrn] == "30"
    account = service.state.accounts[service.state.cards[GOOD].account_id]
    assert account.balance == 50_000_000 - 10 * len(goods)  # the bad one posted nothing
    service.store.close()


async def test_balance_too_large_for_field_54_is_still_answered(tmp_path: Path) -> None:
    service = open_service(str(tmp_path / "ledger.sqlite3"))
    rich = CardSeed(pan=RICH, expiry="3012", balance=10**13)
    merchant = MerchantSeed(merchant_id="898100000000001", name="TEST")
    assert seed(service.store, service.state, cards=[rich], merchants=[merchant]) == 1
    store = service.store
    async with anyio.create_task_group() as tg:
        port = await tg.start(functools.partial(serve, "127.0.0.1", 0, store=store))  # served from the store
        async with await LedgerClient.connect("127.0.0.1", port) as client:
            answer = await client.submit(request(LedgerOp.PURCHASE, RICH, 100))
            assert answer.response_code is ResponseCode.APPROVED
            assert answer.balance is None  # left out, not lost
        tg.cancel_scope.cancel()
    after = store.load()
    assert after.accounts[after.cards[RICH].account_id].balance == 10**13 - 100
    store.close()


RICH = "6200009000000001"


async def test_store_failure_answers_96_then_serve_stops_and_restart_has_only_committed(
    store_factory: StoreFactory, request_backend: str
) -> None:
    opener = store_factory()
    store = opener()
    state = seeded_state()
    store.save_static(state)
    store.commit([((t,), t.effects) for t in state.txns.values()])
    service = LedgerService(store, LedgerEngine(store.load(), clock=lambda: NOW))
    kept = request(LedgerOp.PURCHASE, GOOD, 300)
    lost_request = request(LedgerOp.PURCHASE, GOOD, 400)
    watch = FailStopWatch(service)
    async with anyio.create_task_group() as tg:
        port = await tg.start(watch.serve)
        async with await LedgerClient.connect("127.0.0.1", port) as client:
            assert (await client.submit(kept)).response_code is ResponseCode.APPROVED
            _break(store, request_backend)  # the database goes away under the running ledger
            lost = await client.submit(lost_request)
            assert lost.response_code is ResponseCode.SYSTEM_MALFUNCTION
            assert service.failed
            with anyio.fail_after(10):
                await watch.ended.wait()  # serve ends by itself: the process exits and is restarted
            assert len(watch.stopped) == 1
            assert isinstance(watch.stopped[0], LedgerFailStop)
            with pytest.raises(LedgerUnavailable):
                await client.submit(request(LedgerOp.BALANCE, GOOD))
    store.close()

    reopened = opener()  # restart: exactly the committed batches
    after = reopened.load()
    assert after.accounts[after.cards[GOOD].account_id].balance == 100_000 - 300
    assert check_store(reopened) == []
    # The request answered 96 was never posted: sent again after the restart, it posts once.
    restarted = LedgerService(reopened, LedgerEngine(after, clock=lambda: NOW))
    async with anyio.create_task_group() as tg:
        port = await tg.start(functools.partial(serve, "127.0.0.1", 0, service=restarted))
        async with await LedgerClient.connect("127.0.0.1", port) as client:
            assert (await client.submit(lost_request)).response_code is ResponseCode.APPROVED
            assert (await client.submit(kept)).response_code is ResponseCode.APPROVED  # a repeat: nothing posted
            balance = await client.submit(request(LedgerOp.BALANCE, GOOD))
            assert balance.balance == 100_000 - 300 - 400
        tg.cancel_scope.cancel()
    reopened.close()


def _break(store: LedgerStore, backend: str) -> None:
    if backend == "postgres":
        assert isinstance(store, PostgresStore)
        with psycopg.connect(store.url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
    else:
        store.close()  # every later statement on it fails like a lost database


@pytest.fixture
def request_backend(store_factory: StoreFactory, request: pytest.FixtureRequest) -> str:
    backend: str = request.node.callspec.params["store_factory"]
    return backend


async def test_a_connection_quiet_past_its_writer_deadline_is_answered_on_and_closed_when_idle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer's one cancel scope may pass its (lazily moved) deadline while no request is waiting: it goes
    on under a new one and answers what comes next; the reader's idle deadline, pushed at most once per
    IDLE_SLACK_S, closes the connection only after IDLE_TIMEOUT_S with nothing read."""
    monkeypatch.setattr(core_ledger.server, "SEND_TIMEOUT_S", 0.2)
    monkeypatch.setattr(core_ledger.server, "IDLE_TIMEOUT_S", 1.0)
    monkeypatch.setattr(core_ledger.server, "IDLE_SLACK_S", 0.1)
    db = str(tmp_path / "ledger.sqlite3")
    service = open_service(db, AcqsimConfig.default(data_dir=tmp_path))
    service = LedgerService(service.store, service.engine, commit_timeout=0.3)
    async with anyio.create_task_group() as tg:
        port = await tg.start(functools.partial(serve, "127.0.0.1", 0, service=service))
        conn = await anyio.connect_tcp("127.0.0.1", port)
        for pause in (0.0, 0.6):  # the scenario: quiet past the writer's deadline (0.2-0.33 s), not idle (1 s)
            await anyio.sleep(pause)
            await conn.send(frame(encode_host(request_fields(request(LedgerOp.PURCHASE, GOOD, 100)))))
            with anyio.fail_after(5):
                raw = await conn.receive()
            assert decode_host(raw[2:])["39"] == ResponseCode.APPROVED.value
        quiet_since = anyio.current_time()
        with anyio.fail_after(5), pytest.raises(anyio.EndOfStream):
            await conn.receive()  # idle now: closed by the ledger
        assert anyio.current_time() - quiet_since >= 0.9
        await conn.aclose()
        tg.cancel_scope.cancel()
    service.store.close()
