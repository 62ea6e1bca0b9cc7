"""The NAC's sans-IO core: routes POS-link frames by TPDU and maps answers back to their terminal.

No sockets, no clock: the shell feeds in frames, connection events and the time, and carries out the
decisions (:mod:`nac.events`) it gets back. The ISO 8583 body is never looked at (but for field 41 when sticky).

Up (terminal → front-end): the frame's TPDU DST picks a route → upstream group → one of the group's
connected members, round robin; or, with ``sticky=True`` (a pool of front-ends, each with its own journal and
sessions), always the member the terminal is placed on (:mod:`nac.sticky`: by field 41, failover when the
member is down, back only at a clean point; the one case where the NAC reads the body). A return address from
the pool replaces SRC, and the request is recorded as *in flight* under (address, upstream connection).

Down (front-end → terminal): the answer's DST is a return address. It reaches a terminal only if that
address is in flight *on the connection the answer came in on* and its terminal is still connected and
waiting; the terminal gets its own TPDU back, swapped (``60 0000 DST``). Anything else is dropped and
counted.

Safe reuse: an address returns to the pool only when its answer has come, or when the upstream connection
it was sent on has closed (no answer can come any more). A request whose terminal left, or whose answer
timed out, keeps its address quarantined until then, so a late answer can never find another terminal.
Every upstream connection gets a fresh ``link_id`` (never reused), which is the generation check: an
address in flight on connection 7 is not matched by an answer arriving on connection 9.
"""

from __future__ import annotations

import dataclasses
import itertools

from nac.addresses import ReturnAddressPool
from nac.events import CloseLink, CloseReason, CloseTerminal, Deliver, DownDecision, Drop, DropReason, Forward
from nac.limits import NacLimits
from nac.routes import RouteTable
from nac.stats import MemberStats, NacStats, RouteStats
from nac.sticky import StickyPool
from wire.errors import TpduError
from wire.header import HEADER_LEN
from wire.posframe import is_sign_on, terminal_id_of
from wire.tpdu import TPDU_LEN, Tpdu, answer_head, destination, with_source

#: Shortest frame a terminal may send: TPDU and POS header (the body may be empty as far as the NAC cares).
MIN_TERMINAL_FRAME_LEN = TPDU_LEN + HEADER_LEN


@dataclasses.dataclass(slots=True)
class _InFlight:
    address: int
    link_id: int
    group: str
    terminal_id: int | None  # None once the terminal has closed or the answer timed out
    answer_head: bytes  # the TPDU its answer goes back to the terminal under (wire.tpdu.answer_head)
    deadline: float
    expired: bool = False
    sticky_key: str | None = None  # the terminal key in a sticky pool, counted in flight while it waits


@dataclasses.dataclass(slots=True)
class _Terminal:
    addresses: set[int] = dataclasses.field(default_factory=set)  # its requests in flight


@dataclasses.dataclass(slots=True)
class _Link:
    group: str
    member: str
    addresses: set[int] = dataclasses.field(default_factory=set)  # in flight on it, live or stale
    stale: int = 0  # timed out, still holding their address
    closing: bool = False


def connection_key(terminal_id: int) -> str:
    """The sticky key of a terminal connection whose frames carry no readable field 41."""
    return f"#{terminal_id}"


class Router:
    def __init__(
        self,
        table: RouteTable,
        limits: NacLimits | None = None,
        stats: NacStats | None = None,
        *,
        sticky: bool = False,
    ) -> None:
        self.table = table
        #: One placement table per group when terminals stay on one member (``None``: round robin).
        self.sticky: dict[str, StickyPool] | None = {group: StickyPool() for group in table.groups} if sticky else None
        self.limits = limits or NacLimits()
        self.stats = stats or NacStats()
        for group, pool in (self.sticky or {}).items():
            self.stats.pools[group] = pool.stats
        self._pool = ReturnAddressPool(self.limits.address_pool_size)
        self._in_flight: dict[int, _InFlight] = {}
        # requests not yet answered nor timed out, oldest first: deadlines grow with insertion order (the time
        # only goes forward), so the sweep stops at the first one not due, and an answer removes its entry at once
        self._waiting: dict[int, _InFlight] = {}
        self._terminals: dict[int, _Terminal] = {}
        self._links: dict[int, _Link] = {}
        self._up_links: dict[str, list[int]] = {group: [] for group in table.groups}
        self._round_robin: dict[str, int] = dict.fromkeys(table.groups, 0)
        self._terminal_ids = itertools.count(1)
        self._link_ids = itertools.count(1)
        for group, members in table.groups.items():
            self.stats.routes.setdefault(group, RouteStats())
            for member in members:
                self.stats.members.setdefault(str(member), MemberStats())

    # -- terminal side -------------------------------------------------------------------------------------

    def open_terminal(self) -> int | None:
        """A new terminal connection's id, or ``None`` when ``max_connections`` are open (close it)."""
        if len(self._terminals) >= self.limits.max_connections:
            self.stats.connections_rejected += 1
            self.stats.closed[CloseReason.TOO_MANY_CONNECTIONS] += 1
            return None
        terminal_id = next(self._terminal_ids)
        self._terminals[terminal_id] = _Terminal()
        self.stats.connections_accepted += 1
        self.stats.connections_open += 1
        return terminal_id

    def close_terminal(self, terminal_id: int, reason: CloseReason | None = None) -> None:
        """The terminal connection is gone (``reason`` when the NAC closed it). Its requests in flight keep
        their return addresses until their answers come (then dropped) or their upstream connection ends."""
        terminal = self._terminals.pop(terminal_id, None)
        if terminal is None:
            return
        for pool in (self.sticky or {}).values():
            pool.forget(connection_key(terminal_id))
        self.stats.connections_open -= 1
        if reason is not None:
            self.stats.closed[reason] += 1
        for address in terminal.addresses:
            entry = self._in_flight[address]
            entry.terminal_id = None
            self.stats.in_flight -= 1

    def from_terminal(self, terminal_id: int, payload: bytes, now: float) -> Forward | Drop | CloseTerminal:
        """Route one frame (the bytes after the length prefix) a terminal sent."""
        terminal = self._terminals[terminal_id]
        self.stats.frames_up += 1
        if len(payload) < MIN_TERMINAL_FRAME_LEN:
            return CloseTerminal(terminal_id=terminal_id, reason=CloseReason.TOO_SHORT)
        try:
            tpdu = Tpdu.parse(payload)
        except TpduError:
            return CloseTerminal(terminal_id=terminal_id, reason=CloseReason.BAD_TPDU_ID)
        group = self.table.group_for(tpdu.dst)
        if group is None:
            return self._drop(DropReason.UNKNOWN_DESTINATION)
        if len(terminal.addresses) >= self.limits.max_in_flight:
            return self._drop(DropReason.IN_FLIGHT_LIMIT, group)
        sticky_key = None
        if self.sticky is None:
            link_id = self._pick_link(group)
        else:
            sticky_key = terminal_id_of(payload) or connection_key(terminal_id)
            link_id = self._pick_sticky(group, sticky_key, is_sign_on(payload))
        if link_id is None:
            return self._drop(DropReason.NO_UPSTREAM, group)
        address = self._pool.allocate()
        if address is None:
            return self._drop(DropReason.ADDRESS_POOL_EXHAUSTED, group)
        entry = _InFlight(
            address=address,
            link_id=link_id,
            group=group,
            terminal_id=terminal_id,
            answer_head=answer_head(payload),
            deadline=now + self.limits.answer_timeout_s,
            sticky_key=sticky_key,
        )
        if self.sticky is not None and sticky_key is not None:
            self.sticky[group].sent(sticky_key)
        self._in_flight[address] = entry
        self._waiting[address] = entry
        terminal.addresses.add(address)
        self._links[link_id].addresses.add(address)
        self.stats.in_flight += 1
        self.stats.frames_forwarded += 1
        self.stats.routes[group].forwarded += 1
        return_address = f"{address:04X}"
        return Forward(
            link_id=link_id,
            group=group,
            return_address=return_address,
            payload=with_source(payload, address),
        )

    # -- upstream side -------------------------------------------------------------------------------------

    def link_up(self, group: str, member: str) -> int:
        """A connection to ``member`` of ``group`` is open; returns its ``link_id`` (never reused)."""
        link_id = next(self._link_ids)
        self._links[link_id] = _Link(group=group, member=member)
        self._up_links[group].append(link_id)
        member_stats = self.stats.members.setdefault(member, MemberStats())
        member_stats.up = True
        member_stats.connects += 1
        return link_id

    def link_down(self, link_id: int) -> int:
        """The upstream connection is gone: its requests in flight are dropped (the terminals' timeouts and
        reversals take over) and their addresses freed. Returns how many requests were dropped."""
        link = self._links.pop(link_id, None)
        if link is None:
            return 0
        if link_id in self._up_links[link.group]:
            self._up_links[link.group].remove(link_id)
        member_stats = self.stats.members[link.member]
        member_stats.up = any(self._links[i].member == link.member for i in self._up_links[link.group])
        member_stats.disconnects += 1
        dropped = 0
        for address in link.addresses:
            entry = self._in_flight.pop(address)
            self._stop_waiting(address)
            if entry.terminal_id is not None:
                self._terminals[entry.terminal_id].addresses.discard(address)
                self.stats.in_flight -= 1
                dropped += 1
            self._pool.release(address)
        if dropped:
            self.stats.dropped_on_link_failure += dropped
            self.stats.routes[link.group].errors["dropped_on_link_failure"] += dropped
        return dropped

    def from_upstream(self, link_id: int, payload: bytes) -> DownDecision:
        """Map one answer from upstream connection ``link_id`` back to its terminal."""
        link = self._links[link_id]
        self.stats.frames_down += 1
        try:
            address = destination(payload)
        except TpduError:
            return self._drop(DropReason.BAD_ANSWER_TPDU, link.group)
        entry = self._in_flight.get(address)
        if entry is None or entry.link_id != link_id:
            return self._drop(DropReason.UNKNOWN_RETURN_ADDRESS, link.group)
        self._release(entry, link)
        if entry.terminal_id is None:
            return self._drop(
                DropReason.ANSWER_AFTER_TIMEOUT if entry.expired else DropReason.TERMINAL_GONE, link.group
            )
        self._terminals[entry.terminal_id].addresses.discard(address)
        self.stats.in_flight -= 1
        self.stats.frames_delivered += 1
        self.stats.routes[link.group].answered += 1
        return Deliver(
            terminal_id=entry.terminal_id,
            payload=entry.answer_head + payload[TPDU_LEN:],
        )

    # -- time ----------------------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        for entry in self._waiting.values():
            return entry.deadline
        return None

    def expire(self, now: float) -> list[CloseLink]:
        """Time out requests whose answer is overdue: their terminal may send again (its own timeout and
        reversal handle the lost answer); their address stays quarantined. An upstream connection holding
        more than ``max_stale_per_link`` timed-out requests is to be closed, which frees them."""
        closes: list[CloseLink] = []
        due: list[_InFlight] = []
        for entry in self._waiting.values():
            if entry.deadline > now:
                break
            due.append(entry)
        for entry in due:
            self._stop_waiting(entry.address)
            entry.expired = True
            if entry.terminal_id is not None:
                self._terminals[entry.terminal_id].addresses.discard(entry.address)
                entry.terminal_id = None
                self.stats.in_flight -= 1
            self.stats.answer_timeouts += 1
            self.stats.routes[entry.group].errors["answer_timeout"] += 1
            link = self._links[entry.link_id]
            link.stale += 1
            if link.stale > self.limits.max_stale_per_link and not link.closing:
                link.closing = True
                if entry.link_id in self._up_links[link.group]:
                    self._up_links[link.group].remove(entry.link_id)  # no new requests on it
                self.stats.closed[CloseReason.STALE_ADDRESSES] += 1
                closes.append(CloseLink(link_id=entry.link_id, reason=CloseReason.STALE_ADDRESSES))
        return closes

    # -- inspection (tests, stats) -------------------------------------------------------------------------

    def live_requests(self, link_id: int) -> int:
        """Requests on ``link_id`` whose answer timeout still runs (0 for a link that is gone)."""
        link = self._links.get(link_id)
        return 0 if link is None else len(link.addresses) - link.stale

    @property
    def addresses_in_use(self) -> int:
        return self._pool.in_use

    @property
    def requests_waiting(self) -> int:
        """Requests whose answer timeout still runs (answered ones are forgotten at once)."""
        return len(self._waiting)

    def in_flight_of(self, terminal_id: int) -> int:
        terminal = self._terminals.get(terminal_id)
        return 0 if terminal is None else len(terminal.addresses)

    # -- helpers -------------------------------------------------------------------------------------------

    def _pick_link(self, group: str) -> int | None:
        up = self._up_links[group]
        if not up:
            return None
        index = self._round_robin[group] % len(up)
        self._round_robin[group] = index + 1
        return up[index]

    def _pick_sticky(self, group: str, key: str, sign_on: bool) -> int | None:
        assert self.sticky is not None
        links_of: dict[str, int] = {}
        for link_id in self._up_links[group]:
            links_of.setdefault(self._links[link_id].member, link_id)  # the oldest live connection
        member = self.sticky[group].choose(key, links_of.keys(), sign_on=sign_on)
        return None if member is None else links_of[member]

    def _stop_waiting(self, address: int) -> None:
        """The request at ``address`` is answered, timed out or lost: its answer timeout stops, and in a
        sticky pool it no longer holds its terminal on its member."""
        entry = self._waiting.pop(address, None)
        if entry is not None and entry.sticky_key is not None and self.sticky is not None:
            self.sticky[entry.group].settled(entry.sticky_key)

    def _release(self, entry: _InFlight, link: _Link) -> None:
        del self._in_flight[entry.address]
        self._stop_waiting(entry.address)
        link.addresses.discard(entry.address)
        if entry.expired:
            link.stale -= 1
        self._pool.release(entry.address)

    def _drop(self, reason: DropReason, group: str | None = None) -> Drop:
        self.stats.dropped[reason] += 1
        if group is not None:
            self.stats.routes[group].errors[reason] += 1
        return Drop(reason=reason, group=group)


__all__ = ["MIN_TERMINAL_FRAME_LEN", "CloseLink", "CloseTerminal", "Deliver", "Drop", "Forward", "Router"]
