"""Sticky placement of terminals on a pool of front-ends (sans-IO: no sockets, no clock).

Each front-end of a pool keeps its own journal, so a terminal's session (its working keys from the sign-on)
lives on the member it signed on at. The NAC therefore keeps every terminal on one member:

- **placement**: rendezvous hashing (highest score of ``blake2b(terminal key | member)`` over the members that
  are up): stable across NAC restarts and processes, and when a member joins or leaves only the terminals
  whose best member changes move (about 1/N of them);
- **failover**: a terminal whose member is down goes at once to its best member among those up (the requests
  it had in flight on the dead member are dropped by the router; the terminal's own timeout and automatic
  reversal cover them, and the new member answers "sign on again" until it signs on there);
- **return**: a terminal goes back to a member that came back only at a clean point: none of its requests in
  flight *and* the request is a sign-on, so its session starts afresh on the member it moves to. Moving it
  anywhere else would send a MAC made with one member's keys to another.

The terminal key is field 41 (read by :func:`wire.posframe.terminal_id_of`), or the terminal connection when a
body has no readable 41 (forgotten when that connection closes). One entry per terminal key is kept (about
100 bytes; 10,000 terminals ≈ 1 MB), at most ``MAX_PLACED``: beyond that the least recently used is forgotten
(it is placed afresh by the hash at its next request), so frames with made-up terminal ids cannot grow the
table without bound.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
from collections.abc import Collection
from typing import Final

#: Terminal keys remembered at most (≈ 100 bytes each); the least recently used is forgotten beyond it.
MAX_PLACED: Final = 100_000


def score(key: str, member: str) -> int:
    """The rendezvous score of ``member`` for ``key``: the same in every process (no salted ``hash``)."""
    digest = hashlib.blake2b(f"{key}|{member}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def best_member(key: str, members: Collection[str]) -> str:
    """The member ``key`` belongs on among ``members`` (not empty); ties go to the smaller name."""
    return max(sorted(members), key=lambda member: score(key, member))


@dataclasses.dataclass(slots=True)
class StickyStats:
    placed: int = 0  # terminal keys seen for the first time
    failovers: int = 0  # moved because their member was down
    returns: int = 0  # moved back to their best member at a clean point


@dataclasses.dataclass(slots=True)
class StickyPool:
    """Which member each terminal key is on, and how many of its requests are in flight."""

    stats: StickyStats = dataclasses.field(default_factory=StickyStats)
    max_placed: int = MAX_PLACED
    _placed: dict[str, str] = dataclasses.field(default_factory=dict)
    _in_flight: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)

    def choose(self, key: str, up: Collection[str], *, sign_on: bool) -> str | None:
        """The member for ``key``'s next request among the members ``up`` (``None`` when none is up)."""
        if not up:
            return None
        best = best_member(key, up)
        current = self._placed.pop(key, None)  # put back last: the dict's order is the use order
        chosen = best
        if current is None:
            self.stats.placed += 1
        elif current not in up:
            self.stats.failovers += 1
        elif current != best and sign_on and not self._in_flight[key]:
            self.stats.returns += 1
        else:
            chosen = current
        self._placed[key] = chosen
        if len(self._placed) > self.max_placed:
            del self._placed[next(iter(self._placed))]
        return chosen

    def member_of(self, key: str) -> str | None:
        return self._placed.get(key)

    def forget(self, key: str) -> None:
        """``key`` will not come again (a connection key whose connection closed)."""
        self._placed.pop(key, None)

    @property
    def placed(self) -> int:
        return len(self._placed)

    def sent(self, key: str) -> None:
        self._in_flight[key] += 1

    def settled(self, key: str) -> None:
        """A request of ``key`` was answered, timed out or lost with its connection."""
        self._in_flight[key] -= 1
        if not self._in_flight[key]:
            del self._in_flight[key]

    def in_flight(self, key: str) -> int:
        return self._in_flight[key]


__all__ = ["MAX_PLACED", "StickyPool", "StickyStats", "best_member", "score"]
