"""The NAC's counters, kept by the router and the shell and served as one JSON document."""

from __future__ import annotations

import collections
import dataclasses
from typing import Any


@dataclasses.dataclass(slots=True)
class RouteStats:
    """Per upstream group: requests forwarded, answers delivered, errors by reason."""

    forwarded: int = 0
    answered: int = 0
    errors: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)


@dataclasses.dataclass(slots=True)
class MemberStats:
    """Per front-end member: whether a connection is up, how often it connected and was lost."""

    up: bool = False
    connects: int = 0
    connect_failures: int = 0
    disconnects: int = 0


@dataclasses.dataclass(slots=True)
class NacStats:
    connections_open: int = 0
    connections_accepted: int = 0
    connections_rejected: int = 0
    frames_up: int = 0  # frames received from terminals
    frames_down: int = 0  # frames received from front-ends
    frames_forwarded: int = 0
    frames_delivered: int = 0
    in_flight: int = 0  # requests waiting for an answer (owned by a connected terminal)
    answer_timeouts: int = 0
    dropped_on_link_failure: int = 0  # in flight on an upstream connection that died
    dropped: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    closed: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    routes: dict[str, RouteStats] = dataclasses.field(default_factory=dict)
    members: dict[str, MemberStats] = dataclasses.field(default_factory=dict)
    #: Per route group of a sticky pool (``--sticky``): terminals placed, failed over, returned.
    pools: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def answers_dropped(self) -> int:
        """Answers from a front-end that reached no terminal (late, unknown or malformed)."""
        return sum(
            self.dropped[reason]
            for reason in (
                "bad_answer_tpdu",
                "unknown_return_address",
                "terminal_gone",
                "answer_after_timeout",
                "terminal_not_reading",
            )
        )

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return {
            "connections": {
                "open": self.connections_open,
                "accepted": self.connections_accepted,
                "rejected": self.connections_rejected,
            },
            "frames": {
                "up": self.frames_up,
                "down": self.frames_down,
                "forwarded": self.frames_forwarded,
                "delivered": self.frames_delivered,
            },
            "in_flight": self.in_flight,
            "answer_timeouts": self.answer_timeouts,
            "dropped_on_link_failure": self.dropped_on_link_failure,
            "answers_dropped": self.answers_dropped,
            "dropped": dict(sorted(self.dropped.items())),
            "closed": dict(sorted(self.closed.items())),
            "routes": {
                name: {"forwarded": r.forwarded, "answered": r.answered, "errors": dict(sorted(r.errors.items()))}
                for name, r in sorted(self.routes.items())
            },
            "members": {name: dataclasses.asdict(m) for name, m in sorted(self.members.items())},
        } | ({"pools": {name: dataclasses.asdict(p) for name, p in sorted(self.pools.items())}} if self.pools else {})
