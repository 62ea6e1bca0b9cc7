"""Every routing rule of the sans-IO router, without a network."""

from __future__ import annotations

import pytest

from nac.addresses import ReturnAddressPool
from nac.events import CloseLink, CloseReason, CloseTerminal, Deliver, Drop, DropReason, Forward
from nac.limits import NacLimits
from nac.router import MIN_TERMINAL_FRAME_LEN, Router
from nac.routes import RouteSpecError, RouteTable
from tests.nac.helpers import ECHO_MARKER, echo_answer, request, table
from wire.tpdu import Tpdu


def up(router: Router, terminal: int, payload: bytes | None = None, now: float = 0.0) -> Forward:
    decision = router.from_terminal(terminal, payload or request(), now)
    assert isinstance(decision, Forward), decision
    return decision


def connected_router(links: int = 1, **limits: object) -> tuple[Router, list[int]]:
    router = Router(table(*range(5000, 5000 + links)), NacLimits(**limits))  # type: ignore[arg-type]
    return router, [router.link_up("0003", f"127.0.0.1:{5000 + i}") for i in range(links)]


def test_up_rewrites_src_and_down_restores_the_terminals_own_tpdu() -> None:
    router, [link] = connected_router()
    terminal = router.open_terminal()
    assert terminal is not None
    forward = up(router, terminal, request(b"\x02\x00opaque body"))
    sent = Tpdu.parse(forward.payload)
    assert sent.dst == "0003" and sent.src == forward.return_address != "0000"
    assert forward.payload[5:] == request(b"\x02\x00opaque body")[5:]  # header and body untouched
    assert forward.link_id == link
    deliver = router.from_upstream(link, echo_answer(forward.payload))
    assert isinstance(deliver, Deliver) and deliver.terminal_id == terminal
    assert deliver.payload[:5] == bytes.fromhex("6000000003")  # 60 0000 DST
    assert deliver.payload.endswith(ECHO_MARKER)
    assert router.stats.in_flight == 0 and router.addresses_in_use == 0
    assert router.stats.frames_forwarded == router.stats.frames_delivered == 1


def test_concurrent_requests_get_distinct_addresses_and_answers_in_any_order() -> None:
    router, [link] = connected_router(max_in_flight=3)
    a, b = router.open_terminal(), router.open_terminal()
    assert a is not None and b is not None
    forwards = [up(router, a, request(b"a1")), up(router, b, request(b"b1")), up(router, a, request(b"a2"))]
    assert len({f.return_address for f in forwards}) == 3
    for forward, owner in reversed(list(zip(forwards, (a, b, a), strict=True))):
        deliver = router.from_upstream(link, echo_answer(forward.payload))
        assert isinstance(deliver, Deliver) and deliver.terminal_id == owner
        assert deliver.payload[5:] == forward.payload[5:] + ECHO_MARKER


def test_terminal_src_other_than_0000_is_restored_too() -> None:
    router, [link] = connected_router()
    terminal = router.open_terminal()
    assert terminal is not None
    forward = up(router, terminal, request(src="1234"))
    deliver = router.from_upstream(link, echo_answer(forward.payload))
    assert isinstance(deliver, Deliver) and deliver.payload[:5] == bytes.fromhex("6012340003")


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\x60\x00\x03", CloseReason.TOO_SHORT),
        (request()[: MIN_TERMINAL_FRAME_LEN - 1], CloseReason.TOO_SHORT),
        (b"\x61" + request()[1:], CloseReason.BAD_TPDU_ID),
    ],
)
def test_malformed_tpdu_closes_the_terminal(payload: bytes, reason: CloseReason) -> None:
    router, _ = connected_router()
    terminal = router.open_terminal()
    assert terminal is not None
    assert router.from_terminal(terminal, payload, 0.0) == CloseTerminal(terminal_id=terminal, reason=reason)
    router.close_terminal(terminal, reason)
    assert router.stats.closed[reason] == 1 and router.stats.connections_open == 0


def test_unknown_destination_is_dropped_and_the_terminal_keeps_being_served() -> None:
    router, _ = connected_router()
    terminal = router.open_terminal()
    assert terminal is not None
    assert router.from_terminal(terminal, request(dst="0099"), 0.0) == Drop(reason=DropReason.UNKNOWN_DESTINATION)
    assert router.stats.dropped[DropReason.UNKNOWN_DESTINATION] == 1
    up(router, terminal)


def test_in_flight_limit_per_connection() -> None:
    router, [link] = connected_router(max_in_flight=2)
    terminal, other = router.open_terminal(), router.open_terminal()
    assert terminal is not None and other is not None
    first = up(router, terminal)
    up(router, terminal)
    dropped = router.from_terminal(terminal, request(), 0.0)
    assert dropped == Drop(reason=DropReason.IN_FLIGHT_LIMIT, group="0003")
    up(router, other)  # another terminal is not affected
    assert isinstance(router.from_upstream(link, echo_answer(first.payload)), Deliver)
    up(router, terminal)  # a slot came free
    assert router.stats.routes["0003"].errors[DropReason.IN_FLIGHT_LIMIT] == 1


def test_no_connected_member_drops_with_a_per_route_error() -> None:
    router = Router(table(5000))
    terminal = router.open_terminal()
    assert terminal is not None
    assert router.from_terminal(terminal, request(), 0.0) == Drop(reason=DropReason.NO_UPSTREAM, group="0003")
    assert router.stats.routes["0003"].errors[DropReason.NO_UPSTREAM] == 1


def test_round_robin_over_connected_members_and_failover() -> None:
    router, [one, two] = connected_router(links=2, max_in_flight=10)
    terminal = router.open_terminal()
    assert terminal is not None
    forwards = [up(router, terminal) for _ in range(4)]
    assert [f.link_id for f in forwards] == [one, two, one, two]
    assert router.link_down(one) == 2  # the two in flight on it are dropped and counted
    assert router.stats.dropped_on_link_failure == 2 and router.stats.in_flight == 2
    assert router.stats.routes["0003"].errors["dropped_on_link_failure"] == 2
    assert {up(router, terminal).link_id for _ in range(3)} == {two}
    assert not router.stats.members["127.0.0.1:5000"].up and router.stats.members["127.0.0.1:5001"].up
    again = router.link_up("0003", "127.0.0.1:5000")
    assert again not in (one, two)  # a new link id: the generation of that connection


def test_late_answer_after_the_terminal_left_is_dropped_and_its_address_held_until_then() -> None:
    router, [link] = connected_router(address_pool_size=1)
    gone, next_one = router.open_terminal(), router.open_terminal()
    assert gone is not None and next_one is not None
    forward = up(router, gone)
    router.close_terminal(gone)
    # the only address is still held: nobody else can be given it while an answer may come
    assert router.from_terminal(next_one, request(), 0.0).reason is DropReason.ADDRESS_POOL_EXHAUSTED  # type: ignore[union-attr]
    late = router.from_upstream(link, echo_answer(forward.payload))
    assert late == Drop(reason=DropReason.TERMINAL_GONE, group="0003")
    reused = up(router, next_one)
    assert reused.return_address == forward.return_address  # now it is safe to reuse
    assert router.stats.answers_dropped == 1


def test_answer_timeout_frees_the_terminal_slot_but_quarantines_the_address() -> None:
    router, [link] = connected_router(address_pool_size=2, answer_timeout_s=5.0, max_in_flight=1)
    terminal, other = router.open_terminal(), router.open_terminal()
    assert terminal is not None and other is not None
    slow = up(router, terminal, now=0.0)
    assert router.next_deadline() == 5.0
    assert router.expire(4.9) == [] and router.in_flight_of(terminal) == 1
    assert router.expire(5.0) == []
    assert router.in_flight_of(terminal) == 0 and router.stats.answer_timeouts == 1
    fresh = up(router, terminal, now=6.0)  # the terminal may send again (its reversal, say)
    assert fresh.return_address != slow.return_address
    # both addresses taken (one quarantined): the other terminal is refused rather than given the old one
    assert router.from_terminal(other, request(), 6.0).reason is DropReason.ADDRESS_POOL_EXHAUSTED  # type: ignore[union-attr]
    late = router.from_upstream(link, echo_answer(slow.payload))
    assert late == Drop(reason=DropReason.ANSWER_AFTER_TIMEOUT, group="0003")
    assert up(router, other, now=7.0).return_address == slow.return_address
    assert router.stats.routes["0003"].errors["answer_timeout"] == 1


def test_reused_address_never_delivers_an_answer_from_another_connection() -> None:
    router, [old, new] = connected_router(links=2, address_pool_size=1, answer_timeout_s=1.0)
    first, second = router.open_terminal(), router.open_terminal()
    assert first is not None and second is not None
    stale = up(router, first)
    assert stale.link_id == old
    router.expire(2.0)
    router.link_down(old)  # no answer can come on a closed connection: the address is free again
    fresh = up(router, second)
    assert fresh.return_address == stale.return_address and fresh.link_id == new
    # the reconnected member (a new link id) echoes the old request: not in flight on that connection
    reconnected = router.link_up("0003", "127.0.0.1:5000")
    assert router.from_upstream(reconnected, echo_answer(stale.payload)) == Drop(
        reason=DropReason.UNKNOWN_RETURN_ADDRESS, group="0003"
    )
    deliver = router.from_upstream(new, echo_answer(fresh.payload))
    assert isinstance(deliver, Deliver) and deliver.terminal_id == second


def test_unknown_return_address_and_bad_answer_tpdu() -> None:
    router, [link] = connected_router()
    assert router.from_upstream(link, bytes.fromhex("600ABC0003") + b"x") == Drop(
        reason=DropReason.UNKNOWN_RETURN_ADDRESS, group="0003"
    )
    assert router.from_upstream(link, b"\x60\x00") == Drop(reason=DropReason.BAD_ANSWER_TPDU, group="0003")
    assert router.from_upstream(link, b"\x99\x00\x01\x00\x03") == Drop(reason=DropReason.BAD_ANSWER_TPDU, group="0003")
    assert router.stats.answers_dropped == 3


def test_a_connection_with_too_many_stale_requests_is_recycled() -> None:
    router, [link] = connected_router(max_stale_per_link=2, answer_timeout_s=1.0, max_in_flight=5)
    terminal = router.open_terminal()
    assert terminal is not None
    for _ in range(3):
        up(router, terminal)
    assert router.expire(1.0) == [CloseLink(link_id=link, reason=CloseReason.STALE_ADDRESSES)]
    assert router.from_terminal(terminal, request(), 1.0).reason is DropReason.NO_UPSTREAM  # type: ignore[union-attr]
    router.link_down(link)
    assert router.addresses_in_use == 0


def test_max_connections() -> None:
    router = Router(table(), NacLimits(max_connections=2))
    assert router.open_terminal() is not None and router.open_terminal() is not None
    assert router.open_terminal() is None
    assert router.stats.connections_rejected == 1 and router.stats.closed[CloseReason.TOO_MANY_CONNECTIONS] == 1


def test_address_pool_never_hands_out_0000_and_reuses_oldest_first() -> None:
    pool = ReturnAddressPool(3)
    assert [pool.allocate() for _ in range(4)] == [1, 2, 3, None]
    pool.release(2)
    pool.release(1)
    assert pool.allocate() == 2 and pool.allocate() == 1
    with pytest.raises(ValueError, match="not from this pool"):
        pool.release(0)


def test_route_table_parsing() -> None:
    parsed = RouteTable.parse(["0003,0004=127.0.0.1:1,localhost:2", "00a1=h:3"])
    assert parsed.group_for("0004") == "0003" and parsed.group_for("00A1") == "00A1"
    assert [str(m) for m in parsed.groups["0003"]] == ["127.0.0.1:1", "localhost:2"]
    assert parsed.group_for("0005") is None
    for bad in ["0003", "003=h:1", "0000=h:1", "0003=h", "0003=h:0", "0003=", "0003=h:1;0003=h:2"]:
        with pytest.raises(RouteSpecError):
            RouteTable.parse(bad.split(";"))
