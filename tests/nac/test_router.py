"""The NAC's routing rules without a network."""

from __future__ import annotations

from nac.router import Deliver, Drop, Forward, Router
from wire.tpdu import Tpdu

BODY = b"\x60\x31\x00\x00\x00\x00" + b"\x08\x00body"


def terminal_frame(dst: str = "0003") -> bytes:
    return Tpdu(dst=dst, src="0000").to_bytes() + BODY


def answer_to(forward: Forward) -> bytes:
    up = Tpdu.parse(forward.payload)
    return up.swapped().to_bytes() + forward.payload[5:] + b"+answer"


def test_up_rewrites_src_and_down_restores_terminal_tpdu() -> None:
    router = Router({"0003"})
    forward = router.from_terminal(7, terminal_frame(), now=0.0)
    assert isinstance(forward, Forward)
    up = Tpdu.parse(forward.payload)
    assert up.dst == "0003" and up.src == forward.return_address != "0000"
    assert forward.payload[5:] == BODY  # the body is untouched
    deliver = router.from_upstream(answer_to(forward), now=0.1)
    assert isinstance(deliver, Deliver) and deliver.connection == 7
    assert deliver.payload[:5] == Tpdu(dst="0000", src="0003").to_bytes()
    assert router.in_flight == 0


def test_unknown_route_bad_tpdu_and_late_answer_are_dropped() -> None:
    router = Router({"0003"})
    unknown = router.from_terminal(1, terminal_frame("0009"), now=0.0)
    assert isinstance(unknown, Drop) and unknown.counter == "unknown_route" and not unknown.close_connection
    bad = router.from_terminal(1, b"\x61" + terminal_frame()[1:], now=0.0)
    assert isinstance(bad, Drop) and bad.close_connection
    forward = router.from_terminal(1, terminal_frame(), now=0.0)
    assert isinstance(forward, Forward)
    router.connection_closed(1, now=1.0)
    late = router.from_upstream(answer_to(forward), now=2.0)
    assert isinstance(late, Drop) and router.counters["answers_dropped"] == 1


def test_quarantined_address_is_not_reused_until_it_expires() -> None:
    router = Router({"0003"}, quarantine_s=10.0)
    first = router.from_terminal(1, terminal_frame(), now=0.0)
    assert isinstance(first, Forward)
    assert router.expire(now=5.0, timeout_s=5.0) == 1
    seen = set()
    # Exhaust every other address: a quarantined one must not come back inside the quarantine.
    router2 = Router({"0003"}, max_in_flight_per_connection=70_000, quarantine_s=10.0)
    a = router2.from_terminal(1, terminal_frame(), now=0.0)
    assert isinstance(a, Forward)
    router2.connection_closed(1, now=0.0)
    for _ in range(0xFFFE):
        f = router2.from_terminal(2, terminal_frame(), now=1.0)
        assert isinstance(f, Forward)
        seen.add(f.return_address)
    assert a.return_address not in seen
    assert isinstance(router2.from_terminal(2, terminal_frame(), now=2.0), Drop)  # all in flight/quarantined
    late = router2.from_upstream(answer_to(a), now=3.0)
    assert isinstance(late, Drop)  # the late answer reaches nobody
    assert first.return_address  # (router: first request expired and counted)
    assert router.counters["route_0003_timeouts"] == 1


def test_in_flight_limit_per_connection() -> None:
    router = Router({"0003"}, max_in_flight_per_connection=2)
    assert isinstance(router.from_terminal(1, terminal_frame(), now=0), Forward)
    assert isinstance(router.from_terminal(1, terminal_frame(), now=0), Forward)
    assert isinstance(router.from_terminal(1, terminal_frame(), now=0), Drop)
    assert isinstance(router.from_terminal(2, terminal_frame(), now=0), Forward)
