"""The router against a simple model, driven by hypothesis: whatever the order of requests, answers, closes,
timeouts and upstream failures, an answer reaches exactly the terminal that sent its request, and only
while that terminal still waits for it; everything else is dropped and counted."""

from __future__ import annotations

import dataclasses

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from nac.events import Deliver, Drop, Forward
from nac.limits import NacLimits
from nac.router import Router
from tests.nac.helpers import ECHO_MARKER, echo_answer, request, table

TIMEOUT_S = 10.0
MEMBERS = ("127.0.0.1:5000", "127.0.0.1:5001")


@dataclasses.dataclass
class Sent:
    forward: Forward
    terminal: int
    deadline: float
    expired: bool = False
    answered: bool = False


class RouterMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        # a tiny address pool and in-flight limit so that reuse and refusals happen often
        limits = NacLimits(address_pool_size=3, max_in_flight=2, answer_timeout_s=TIMEOUT_S, max_stale_per_link=50)
        self.router = Router(table(5000, 5001), limits)
        self.now = 0.0
        self.open: set[int] = set()
        self.links: dict[int, str] = {}
        self.sent: list[Sent] = []
        self.counter = 0

    def _live(self, sent: Sent) -> bool:
        return (
            not sent.answered and not sent.expired and sent.terminal in self.open and sent.forward.link_id in self.links
        )

    @rule()
    def open_terminal(self) -> None:
        terminal = self.router.open_terminal()
        assert terminal is not None
        self.open.add(terminal)

    @precondition(lambda self: self.open)
    @rule(data=st.data())
    def close_terminal(self, data: st.DataObject) -> None:
        terminal = data.draw(st.sampled_from(sorted(self.open)))
        self.open.discard(terminal)
        self.router.close_terminal(terminal)

    @precondition(lambda self: len(self.links) < 3)
    @rule(member=st.sampled_from(MEMBERS))
    def link_up(self, member: str) -> None:
        self.links[self.router.link_up("0003", member)] = member

    @precondition(lambda self: self.links)
    @rule(data=st.data())
    def link_down(self, data: st.DataObject) -> None:
        link = data.draw(st.sampled_from(sorted(self.links)))
        del self.links[link]
        expected = sum(1 for s in self.sent if s.forward.link_id == link and self._live_if_link_up(s))
        assert self.router.link_down(link) == expected

    def _live_if_link_up(self, sent: Sent) -> bool:
        return not sent.answered and not sent.expired and sent.terminal in self.open

    @precondition(lambda self: self.open)
    @rule(data=st.data(), known=st.booleans())
    def send(self, data: st.DataObject, known: bool) -> None:
        terminal = data.draw(st.sampled_from(sorted(self.open)))
        self.counter += 1
        payload = request(f"req-{self.counter}".encode(), dst="0003" if known else "0042")
        decision = self.router.from_terminal(terminal, payload, self.now)
        if isinstance(decision, Forward):
            assert known and decision.link_id in self.links
            assert all(s.forward.return_address != decision.return_address for s in self.sent if self._holds(s))
            self.sent.append(Sent(forward=decision, terminal=terminal, deadline=self.now + TIMEOUT_S))
        else:
            assert isinstance(decision, Drop)
            waiting = sum(1 for s in self.sent if self._live(s) and s.terminal == terminal)
            assert not known or not self.links or waiting >= 2 or self.router.addresses_in_use == 3

    def _holds(self, sent: Sent) -> bool:
        """Whether the request still holds its return address (no answer yet, its connection open)."""
        return not sent.answered and sent.forward.link_id in self.links

    @precondition(lambda self: any(self._holds(s) for s in self.sent))
    @rule(data=st.data())
    def answer(self, data: st.DataObject) -> None:
        sent = data.draw(st.sampled_from([s for s in self.sent if self._holds(s)]))
        live = self._live(sent)
        decision = self.router.from_upstream(sent.forward.link_id, echo_answer(sent.forward.payload))
        sent.answered = True
        if live:
            assert isinstance(decision, Deliver)
            assert decision.terminal_id == sent.terminal
            assert decision.payload == bytes.fromhex("6000000003") + sent.forward.payload[5:] + ECHO_MARKER
        else:
            assert isinstance(decision, Drop)

    @rule(seconds=st.sampled_from([0.5, 4.0, 11.0]))
    def time_passes(self, seconds: float) -> None:
        self.now += seconds
        self.router.expire(self.now)
        for sent in self.sent:
            if sent.deadline <= self.now and not sent.answered:
                sent.expired = True

    @invariant()
    def bookkeeping_matches_the_model(self) -> None:
        assert self.router.stats.in_flight == sum(1 for s in self.sent if self._live(s))
        assert self.router.addresses_in_use == sum(1 for s in self.sent if self._holds(s))
        assert self.router.stats.connections_open == len(self.open)
        waiting = [s for s in self.sent if not s.answered and not s.expired and s.forward.link_id in self.links]
        assert self.router.requests_waiting == len(waiting)


TestRouterMachine = RouterMachine.TestCase
