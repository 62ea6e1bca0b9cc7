"""Sticky placement on a pool of front-ends: the rendezvous rule, and the router's failover and return."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from nac.events import Drop, DropReason, Forward
from nac.limits import NacLimits
from nac.router import Router
from nac.sticky import StickyPool, best_member
from tests.nac.helpers import echo_answer, request, table
from wire.codec import encode_pos_body
from wire.posframe import is_sign_on, terminal_id_of

MEMBERS = ("127.0.0.1:5000", "127.0.0.1:5001", "127.0.0.1:5002")


def frame(terminal_id: str, mti: str = "0200") -> bytes:
    """A terminal's payload whose body the sticky NAC reads field 41 from."""
    return request(encode_pos_body({"t": mti, "3": "000000", "11": "000001", "41": terminal_id}))


def pool_router(members: int = 2) -> tuple[Router, list[int]]:
    router = Router(table(*range(5000, 5000 + members)), NacLimits(max_in_flight=1000), sticky=True)
    return router, [router.link_up("0003", MEMBERS[i]) for i in range(members)]


def send(router: Router, connection: int, payload: bytes) -> Forward:
    decision = router.from_terminal(connection, payload, 0.0)
    assert isinstance(decision, Forward), decision
    return decision


def answer(router: Router, forward: Forward) -> None:
    router.from_upstream(forward.link_id, echo_answer(forward.payload))


def test_the_terminal_key_is_field_41_and_a_sign_on_is_told_by_its_mti_alone() -> None:
    assert terminal_id_of(frame("10000009")) == "10000009"
    assert terminal_id_of(request(b"\x02\x00not iso")) is None  # unreadable: the connection is the key
    assert is_sign_on(frame("10000009", "0800")) and not is_sign_on(frame("10000009"))


def test_every_request_of_a_terminal_reaches_one_member_whatever_connection_it_comes_on() -> None:
    router, links = pool_router()
    placed: dict[str, int] = {}
    for n in range(40):
        terminal_id = f"2{n:07d}"
        for _ in range(3):  # a connection per transaction, as dial-up terminals do
            connection = router.open_terminal()
            assert connection is not None
            forward = send(router, connection, frame(terminal_id))
            assert placed.setdefault(terminal_id, forward.link_id) == forward.link_id
            answer(router, forward)
            router.close_terminal(connection)
    assert set(placed.values()) == set(links)  # spread over both
    assert router.sticky is not None and router.sticky["0003"].stats.placed == 40


def test_failover_moves_only_the_dead_members_terminals_and_return_waits_for_a_clean_sign_on() -> None:
    router, [first, second] = pool_router()
    connection = router.open_terminal()
    assert connection is not None
    on_first = [t for t in (f"3{n:07d}" for n in range(30)) if send(router, connection, frame(t)).link_id == first]
    on_second = [t for t in (f"3{n:07d}" for n in range(30)) if t not in on_first]
    assert on_first and on_second
    router.link_down(first)  # the requests in flight on it are dropped: terminals time out and reverse
    assert router.stats.dropped_on_link_failure == len(on_first)
    for terminal_id in on_first + on_second:
        assert send(router, connection, frame(terminal_id)).link_id == second
    sticky = router.sticky
    assert sticky is not None and sticky["0003"].stats.failovers == len(on_first)

    back = router.link_up("0003", MEMBERS[0])
    mover, *others = on_first
    in_flight = send(router, connection, frame(mover))  # a financial request: not a clean point
    assert in_flight.link_id == second
    assert send(router, connection, frame(mover, "0800")).link_id == second  # a sign-on, but one in flight
    for terminal_id in on_second:  # never moved, never move
        assert send(router, connection, frame(terminal_id, "0800")).link_id == second
    # once nothing of it waits at the member (answered, or its answer timed out), a sign-on moves it back
    assert router.expire(router.limits.answer_timeout_s + 1.0) == []
    assert send(router, connection, frame(mover, "0800")).link_id == back
    assert send(router, connection, frame(mover)).link_id == back
    assert sticky["0003"].stats.returns == 1
    assert router.stats.snapshot()["pools"]["0003"] == {"placed": 30, "failovers": len(on_first), "returns": 1}
    assert all(send(router, connection, frame(t)).link_id == second for t in others)


def test_no_member_up_drops_and_counts() -> None:
    router, [only] = pool_router(1)
    router.link_down(only)
    connection = router.open_terminal()
    assert connection is not None
    decision = router.from_terminal(connection, frame("10000001"), 0.0)
    assert isinstance(decision, Drop) and decision.reason is DropReason.NO_UPSTREAM


@given(
    keys=st.lists(st.text("0123456789", min_size=8, max_size=8), min_size=1, max_size=50, unique=True),
    gone=st.sampled_from(MEMBERS),
)
def test_a_member_leaving_moves_only_its_own_terminals(keys: list[str], gone: str) -> None:
    before = {key: best_member(key, MEMBERS) for key in keys}
    left = [m for m in MEMBERS if m != gone]
    for key in keys:
        after = best_member(key, left)
        assert after == before[key] or before[key] == gone


@given(st.lists(st.tuples(st.sampled_from("ab"), st.booleans(), st.booleans(), st.booleans()), max_size=40))
def test_a_terminal_moves_only_for_a_dead_member_or_at_a_clean_sign_on(
    steps: list[tuple[str, bool, bool, bool]],
) -> None:
    """Random walks of members up/down, answers, sign-ons and requests in flight against the rule itself."""
    pool = StickyPool()
    up = {"a", "b"}
    current: str | None = None
    for member, toggle, sign_on, answered in steps:
        if toggle:
            up ^= {member}
        if answered and pool.in_flight("t"):
            pool.settled("t")
        waiting = pool.in_flight("t")
        chosen = pool.choose("t", up, sign_on=sign_on)
        if not up:
            assert chosen is None
            continue
        assert chosen in up
        if current is not None and chosen != current:
            assert current not in up or (sign_on and waiting == 0)
        if current in up and not (sign_on and waiting == 0):
            assert chosen == current
        pool.sent("t")
        current = chosen


def test_the_placement_table_is_bounded_and_forgets_closed_connections() -> None:
    pool = StickyPool(max_placed=3)
    for key in ("a", "b", "c"):
        pool.choose(key, MEMBERS, sign_on=False)
    pool.choose("a", MEMBERS, sign_on=False)  # used again: now the most recent
    pool.choose("d", MEMBERS, sign_on=False)  # one too many: the least recently used ("b") goes
    assert pool.placed == 3 and pool.member_of("b") is None and pool.member_of("a") is not None

    router, _links = pool_router()
    connection = router.open_terminal()
    assert connection is not None
    send(router, connection, request(b"\x02\x00not iso"))  # no readable 41: keyed by its connection
    sticky = router.sticky
    assert sticky is not None and sticky["0003"].placed == 1
    router.close_terminal(connection)
    assert sticky["0003"].placed == 0
