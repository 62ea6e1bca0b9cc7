"""The runtime's multiplexed link, over real loopback TCP against a scripted peer: each answer reaches the
request with its key whatever order the peer answers in, a key can be used again once answered, and a lost
peer or an answer that does not decode fails every waiter at once. On asyncio the link is the callback path's
(:class:`CallbackLink`), on trio the task path's (:class:`MultiplexedLink`): the same tests hold for both."""

from __future__ import annotations

import asyncio
import functools
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import pytest
import sniffio

from acqkit.multiplex import DEADLINE_SLACK_S, CallbackLink, Link, LinkLost, MultiplexedLink, open_link
from acqkit.netio import FramedConnection, serve_tcp
from tests.collectoroff import collector_off
from wire.errors import FramingError

pytestmark = pytest.mark.anyio

HOST = "127.0.0.1"
#: Far longer than any step here takes; a wait that reaches it is a failure, not a timing.
STEP_TIMEOUT_S = 5.0

Handler = Callable[[FramedConnection], Awaitable[None]]


def decode(payload: bytes) -> tuple[bytes, bytes]:
    """The key is the frame's first byte (a one-character tag the peer echoes); a frame starting with ``#``
    cannot be trusted."""
    if payload.startswith(b"#"):
        raise FramingError(f"answer {payload[:8]!r} does not decode", kind="undecodable")
    return payload[:1], payload


def answering_in_reverse(batch: int) -> Handler:
    """A peer that reads ``batch`` requests, then answers them last first (each request + b"!")."""

    async def handle(conn: FramedConnection) -> None:
        while True:
            requests = []
            for _ in range(batch):
                payload = await conn.receive(STEP_TIMEOUT_S)
                if payload is None:
                    return
                requests.append(payload)
            for payload in reversed(requests):
                await conn.send(payload + b"!")

    return handle


def hanging_up_after(count: int, received: anyio.Event) -> Handler:
    """A peer that reads ``count`` requests, sets ``received``, and closes the connection unanswered."""

    async def handle(conn: FramedConnection) -> None:
        for _ in range(count):
            await conn.receive(STEP_TIMEOUT_S)
        received.set()

    return handle


async def never_answer_b(conn: FramedConnection) -> None:
    """A peer that echoes every request (+ b"!") but those keyed ``b``, which it never answers."""
    while (payload := await conn.receive(STEP_TIMEOUT_S)) is not None:
        if not payload.startswith(b"b"):
            await conn.send(payload + b"!")


@asynccontextmanager
async def link_to(handler: Handler) -> AsyncIterator[Link[bytes, bytes]]:
    async with anyio.create_task_group() as tg:
        port = await tg.start(functools.partial(serve_tcp, HOST, 0, handler, name="scripted-peer"))
        link = await open_link(HOST, port, decode, what="scripted peer", timeout=STEP_TIMEOUT_S)
        try:
            yield link
        finally:
            await link.aclose()
            tg.cancel_scope.cancel()


async def test_asyncio_takes_the_callback_path_and_trio_the_task_path() -> None:
    async with link_to(answering_in_reverse(1)) as link:
        expected = CallbackLink if sniffio.current_async_library() == "asyncio" else MultiplexedLink
        assert type(link) is expected


async def test_answers_out_of_order_each_reach_the_request_with_their_key() -> None:
    answers: dict[bytes, bytes] = {}
    async with link_to(answering_in_reverse(3)) as link:

        async def ask(tag: bytes) -> None:
            [answers[tag]] = await link.exchange_many([(tag, tag + b"-request")])

        with anyio.fail_after(STEP_TIMEOUT_S):
            async with anyio.create_task_group() as tg:
                for tag in (b"a", b"b", b"c"):
                    tg.start_soon(ask, tag)
    assert answers == {b"a": b"a-request!", b"b": b"b-request!", b"c": b"c-request!"}


async def test_one_pipelined_exchange_returns_its_answers_in_request_order() -> None:
    async with link_to(answering_in_reverse(3)) as link:
        with anyio.fail_after(STEP_TIMEOUT_S):
            got = await link.exchange_many([(b"x", b"x1"), (b"y", b"y2"), (b"z", b"z3")])
    assert got == [b"x1!", b"y2!", b"z3!"]


async def test_a_key_is_used_again_once_its_answer_came() -> None:
    async with link_to(answering_in_reverse(1)) as link:
        with anyio.fail_after(STEP_TIMEOUT_S):
            first = await link.exchange_many([(b"k", b"k-first")])
            second = await link.exchange_many([(b"k", b"k-second")])
    assert (first, second) == ([b"k-first!"], [b"k-second!"])
    assert link.dead is None


async def test_two_waiters_on_one_key_are_answered_first_come_first_served() -> None:
    async with link_to(answering_in_reverse(1)) as link:
        with anyio.fail_after(STEP_TIMEOUT_S):
            got = await link.exchange_many([(b"k", b"k1"), (b"k", b"k2")])
    assert got == [b"k1!", b"k2!"]


async def _ask(link: Link[bytes, bytes], tag: bytes, outcomes: dict[bytes, str]) -> None:
    """One exchange under ``tag``; its outcome ("answered", or why the link was lost) noted in ``outcomes``."""
    try:
        await link.exchange_many([(tag, tag)])
        outcomes[tag] = "answered"
    except LinkLost as exc:
        outcomes[tag] = exc.reason


async def test_a_lost_peer_fails_every_waiter_with_link_lost() -> None:
    received = anyio.Event()
    outcomes: dict[bytes, str] = {}
    async with link_to(hanging_up_after(3, received)) as link:
        with anyio.fail_after(STEP_TIMEOUT_S):  # every waiter hears it at once, none waits for a timeout
            async with anyio.create_task_group() as tg:
                for tag in (b"a", b"b", b"c"):
                    tg.start_soon(_ask, link, tag, outcomes)
        assert received.is_set()
        assert link.dead is not None
        with pytest.raises(LinkLost):  # a dead link refuses new work at once
            await link.exchange_many([(b"d", b"d")])
    assert set(outcomes) == {b"a", b"b", b"c"}
    assert all("closed by the scripted peer" in reason or "connection lost" in reason for reason in outcomes.values())


async def test_an_answer_nobody_waits_for_is_dropped_not_misdelivered() -> None:
    async def stray_then_echo(conn: FramedConnection) -> None:
        payload = await conn.receive(STEP_TIMEOUT_S)
        assert payload is not None
        await conn.send(b"q-stray")  # a key nobody asked under (as a late answer to a timed-out request)
        await conn.send(payload + b"!")

    async with link_to(stray_then_echo) as link:
        with anyio.fail_after(STEP_TIMEOUT_S):
            got = await link.exchange_many([(b"p", b"p1")])
    assert got == [b"p1!"]
    assert link.dead is None


async def test_an_answer_that_does_not_decode_fails_every_waiter_and_ends_the_link() -> None:
    async def garbage_after_two(conn: FramedConnection) -> None:
        for _ in range(2):
            await conn.receive(STEP_TIMEOUT_S)
        await conn.send(b"#garbage")
        await conn.receive(STEP_TIMEOUT_S)  # until the client gives up the connection

    outcomes: dict[bytes, str] = {}
    async with link_to(garbage_after_two) as link:
        with anyio.fail_after(STEP_TIMEOUT_S):
            async with anyio.create_task_group() as tg:
                for tag in (b"a", b"b"):
                    tg.start_soon(_ask, link, tag, outcomes)
        assert link.dead is not None and "FramingError" in link.dead
    assert set(outcomes) == {b"a", b"b"}
    assert all("does not decode" in reason for reason in outcomes.values())


async def test_a_late_answer_after_a_timed_out_request_is_dropped_with_a_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    released = anyio.Event()

    async def late_then_echo(conn: FramedConnection) -> None:
        slow = await conn.receive(STEP_TIMEOUT_S)
        assert slow is not None
        await released.wait()
        await conn.send(slow + b"-late")  # its caller gave up meanwhile
        while (payload := await conn.receive(STEP_TIMEOUT_S)) is not None:
            await conn.send(payload + b"!")

    caplog.set_level("INFO", logger="acqsim.net")
    async with link_to(late_then_echo) as link:
        with anyio.move_on_after(0.05) as scope:
            await link.exchange_many([(b"s", b"slow")])
        assert scope.cancelled_caught
        released.set()
        with anyio.fail_after(STEP_TIMEOUT_S):
            got = await link.exchange_many([(b"n", b"next")])
        assert got == [b"next!"]
        assert link.dead is None
    assert any("nobody waits for" in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_callback_exchange_past_its_deadline_with_one_answer_of_two_times_out_and_leaves_no_waiter() -> None:
    """The callback path's own deadline (a timer of the loop): one answer in, the other never coming."""

    async with link_to(never_answer_b) as link:
        assert isinstance(link, CallbackLink)
        loop_time = asyncio.get_running_loop().time
        with pytest.raises(TimeoutError):
            await link.exchange_until([(b"a", b"a1"), (b"b", b"b1")], loop_time() + 0.05)
        assert not link._pending  # nobody is left waiting under either key
        assert link.dead is None
        with anyio.fail_after(STEP_TIMEOUT_S):
            assert await link.exchange_until([(b"c", b"c1")], loop_time() + STEP_TIMEOUT_S) == [b"c1!"]


async def _exchange_then(
    link: CallbackLink[bytes, bytes], requests: list[tuple[bytes, bytes]], seconds: float
) -> object:
    """What :meth:`CallbackLink.exchange_then` hands its callback, awaited here for the test's sake."""
    ended = anyio.Event()
    outcome: list[object] = []

    def done(result: object) -> None:
        outcome.append(result)
        ended.set()

    link.exchange_then(requests, asyncio.get_running_loop().time() + seconds, done)
    with anyio.fail_after(STEP_TIMEOUT_S):
        await ended.wait()
    assert len(outcome) == 1  # told once
    return outcome[0]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_an_exchange_stepped_from_callbacks_gets_its_answers_in_order_a_timeout_or_the_link_lost() -> None:
    """:meth:`CallbackLink.exchange_then` (the front-end's flows stepped from callbacks): the same outcomes as
    :meth:`CallbackLink.exchange_until`, handed to a callback once."""

    async with link_to(never_answer_b) as link:
        assert isinstance(link, CallbackLink)
        assert await _exchange_then(link, [(b"x", b"x1"), (b"y", b"y1")], STEP_TIMEOUT_S) == [b"x1!", b"y1!"]
        timed_out = await _exchange_then(link, [(b"a", b"a1"), (b"b", b"b1")], 0.05)
        assert isinstance(timed_out, TimeoutError)
        assert not link._pending and link.dead is None
    received = anyio.Event()
    async with link_to(hanging_up_after(1, received)) as link:
        assert isinstance(link, CallbackLink)
        assert isinstance(await _exchange_then(link, [(b"a", b"a1")], STEP_TIMEOUT_S), LinkLost)
        with pytest.raises(LinkLost):  # a dead link refuses at once
            link.exchange_then([(b"b", b"b1")], asyncio.get_running_loop().time() + 1, lambda _result: None)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_exchanges_stepped_from_callbacks_each_time_out_at_their_own_deadline_whatever_their_order() -> None:
    """Deadlines in the order the exchanges are made share one timer (the link's queue); one that comes before
    the newest queued has a timer of its own. Either way each exchange ends at its own deadline, not a later
    one's, and one answered meanwhile is not timed out."""
    async with link_to(never_answer_b) as link:
        assert isinstance(link, CallbackLink)
        now = asyncio.get_running_loop().time()
        ended: list[tuple[str, object]] = []
        told = {count: anyio.Event() for count in (3, 4)}

        def done_for(name: str) -> Callable[[object], None]:
            def done(result: object) -> None:
                ended.append((name, result))
                if len(ended) in told:
                    told[len(ended)].set()

            return done

        link.exchange_then([(b"b", b"b1")], now + 0.30, done_for("late"))
        link.exchange_then([(b"b", b"b2")], now + 0.05, done_for("early, out of order"))
        link.exchange_then([(b"a", b"a1")], now + 0.60, done_for("answered"))
        link.exchange_then([(b"b", b"b3")], now + 0.65, done_for("after the answered one"))
        with anyio.fail_after(STEP_TIMEOUT_S):
            await told[3].wait()
        assert [name for name, _ in ended] == ["answered", "early, out of order", "late"]
        assert ended[0][1] == [b"a1!"]
        assert all(isinstance(result, TimeoutError) for _, result in ended[1:])
        with anyio.fail_after(STEP_TIMEOUT_S):
            await told[4].wait()
        assert ended[3][0] == "after the answered one" and isinstance(ended[3][1], TimeoutError)
        assert asyncio.get_running_loop().time() >= now + 0.65 - DEADLINE_SLACK_S
        assert not link._pending and link.dead is None


class _Caller:
    """Stands for what a caller's ``done`` holds (its flow, its request): weakly referable, to see it freed."""


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_an_ended_exchange_is_freed_by_refcounting_not_left_for_the_cyclic_collector() -> None:
    """An exchange, its waiters, its deadline's timer and its caller's closure once pointed at each other: every
    purchase's state then waited for the cyclic collector, whose passes cost the front-end ~10 % of its CPU. Once
    an exchange has ended — answered, timed out or its link lost — what its caller gave it is freed at once."""
    async with link_to(never_answer_b) as link:
        assert isinstance(link, CallbackLink)
        for requests, seconds in (([(b"x", b"x1"), (b"y", b"y1")], STEP_TIMEOUT_S), ([(b"b", b"b1")], 0.05)):
            with collector_off():
                caller = _Caller()
                freed = weakref.ref(caller)
                ended = anyio.Event()

                def done(result: object, caller: _Caller = caller, ended: anyio.Event = ended) -> None:
                    ended.set()

                link.exchange_then(requests, asyncio.get_running_loop().time() + seconds, done)
                del caller, done
                with anyio.fail_after(STEP_TIMEOUT_S):
                    await ended.wait()
                assert freed() is None, "the ended exchange is still referenced: only a gc pass would free it"
