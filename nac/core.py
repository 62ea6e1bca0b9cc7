"""Everything the NAC does per frame and per connection event, as synchronous calls both shells share.

The NAC has two I/O shells: the task path (:mod:`nac.taskpath`: a task per connection on
:func:`acqkit.netio.serve_tcp`, for trio and TLS) and the callback path (asyncio protocol callbacks). Neither
holds a rule of its own: a terminal opened, a terminal frame in, an answer in from a front-end, a link up or
lost, a timeout sweep — each is one call here, which updates the router (:mod:`nac.router`, the sans-IO rules),
the rules file's effects (:mod:`nac.scripted`), the counters, the traces and the logs, and hands frames to
*sinks* the shell gives it: a :class:`TerminalSink` per terminal connection (its answers) and a
:class:`LinkSink` per upstream connection (its requests). Sinks never wait; a shell writes what they hold.

What a shell still does itself: reading, writing, timers (the idle timeout, a rule's delay, the answer-timeout
sweep at :meth:`NacCore.next_deadline`) and (re)connecting to the front-ends.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Protocol

from acqkit import txnlog
from acqkit.peerclient import PeerUnavailable
from acqkit.rules import ActionKind, RuleBook, hit_note
from nac.events import CloseReason, Deliver, Drop, DropReason, Forward, framing_close_reason
from nac.limits import NacLimits
from nac.router import Router
from nac.routes import Member, RouteTable
from nac.scripted import ScriptedNac, scripted_answer
from nac.tracing import FrameTracer
from wire.errors import FramingError

log = logging.getLogger("acqsim.nac")


class RoutesUnreachable(PeerUnavailable):
    """A route group had no member connected within the NAC's ``peer_wait`` after it started."""


class TerminalSink(Protocol):
    """Where a terminal connection's answers go (never waits)."""

    def put(self, payload: bytes) -> bool:
        """Queue an answer for the terminal; ``False`` if it cannot take one (full or closing)."""

    def __len__(self) -> int:
        """Answers queued and not yet written (a gauge of the metrics)."""


class LinkSink(Protocol):
    """Where an upstream connection's requests go (never waits)."""

    def send(self, payload: bytes) -> None:
        """Queue a request frame's payload (requests queued in one loop turn leave in one write)."""

    def close(self) -> None:
        """Close the connection once what is queued is written; the shell then reports :meth:`NacCore.link_lost`."""


@dataclasses.dataclass(frozen=True, slots=True)
class Delay:
    """A rule holds the request: route it with :meth:`NacCore.route` after ``seconds`` (the terminal's later
    frames wait behind it, as they would behind a slow line)."""

    seconds: float


@dataclasses.dataclass(slots=True, eq=False)
class _Link:
    group: str
    member: Member
    peer: str
    sink: LinkSink
    #: Recycled for timed-out requests: a replacement is open; this one closes once no live request is left.
    draining: bool = False


class NacCore:
    """The NAC's per-event work, shared by both shells (one copy of every rule, counter, log line and trace)."""

    def __init__(
        self,
        table: RouteTable,
        limits: NacLimits,
        *,
        trace: FrameTracer | None = None,
        rules: RuleBook | None = None,
        sticky: bool = False,
    ) -> None:
        self.table = table
        self.limits = limits
        self.router = Router(table, limits, sticky=sticky)
        self.stats = self.router.stats
        self.trace = trace
        self._scripted = ScriptedNac(rules) if rules is not None else None
        self._terminals: dict[int, TerminalSink] = {}
        self._links: dict[int, _Link] = {}
        self.groups_up: set[str] = set()  # route groups that have had a member connected
        #: Called once (then cleared) when a request is forwarded while the shell's timeout sweep had nothing
        #: to wait for; the shell sets it when its sweep goes to sleep with no deadline.
        self.on_first_deadline: Callable[[], None] | None = None
        #: Called once (then cleared) when every route group has had a member connected.
        self.on_all_groups_up: Callable[[], None] | None = None

    # -- terminals -----------------------------------------------------------------------------------------

    def terminal_opened(self, peer: str, sink: TerminalSink) -> int | None:
        """A terminal connected: its id, or ``None`` if it is over ``max_connections`` (close it)."""
        terminal_id = self.router.open_terminal()
        if terminal_id is None:
            log.warning("terminal %s: refused, %d connections open", peer, self.limits.max_connections)
            return None
        self._terminals[terminal_id] = sink
        return terminal_id

    def terminal_closed(self, terminal_id: int, reason: CloseReason | None) -> None:
        """The terminal's connection is gone (``reason`` when the NAC closed it)."""
        self._terminals.pop(terminal_id, None)
        if self._scripted is not None:
            self._scripted.forget(terminal_id)
        self.router.close_terminal(terminal_id, reason)

    def terminal_frame(self, terminal_id: int, peer: str, payload: bytes, now: float) -> CloseReason | Delay | None:
        """One request frame of a terminal, received at ``now``: a rules file's hit acted on, then routed.
        Returns a reason to close the connection, a :class:`Delay` (then :meth:`route` it later), or ``None``."""
        hit = None if self._scripted is None else self._scripted.on_request(terminal_id, payload)
        if self.trace is not None:
            self.trace.record(direction="in", link="pos", peer=peer, payload=payload, note=hit_note(hit))
        if hit is not None:
            action = hit.action
            log.info("terminal %s: rule %d (%s): %s", peer, hit.number, hit.rule, action.kind)
            if action.kind is ActionKind.ANSWER:
                answer = scripted_answer(payload, action.code or "")
                if answer is not None:
                    self._deliver(Deliver(terminal_id=terminal_id, payload=answer))
                return None
            if action.kind is ActionKind.DELAY:
                return Delay(action.delay_s)
            if action.kind is ActionKind.DROP:
                return None
            if action.kind is ActionKind.CLOSE:
                return CloseReason.BY_RULE
            # corrupt_mac, answer_twice: routed; ScriptedNac changes the answer
        return self.route(terminal_id, peer, payload, now)

    def route(self, terminal_id: int, peer: str, payload: bytes, now: float) -> CloseReason | None:
        """Route a terminal's request (rules already applied): forwarded or dropped; a reason to close."""
        decision = self.router.from_terminal(terminal_id, payload, now)
        if isinstance(decision, Forward):
            self._forward(decision)
        elif isinstance(decision, Drop):
            log.info("terminal %s: frame dropped: %s", peer, decision.reason)
        else:
            log.warning("terminal %s: closing: %s", peer, decision.reason)
            return decision.reason
        return None

    def terminal_framing_error(self, peer: str, exc: FramingError) -> CloseReason:
        """A terminal's stream is out of step (bad length prefix, truncated frame): close it, for this reason."""
        reason = framing_close_reason(exc)
        log.warning("terminal %s: closing: %s (%s)", peer, reason, exc)
        return reason

    def terminal_idle(self, peer: str) -> CloseReason:
        log.info("terminal %s: idle for %.0f s, closing", peer, self.limits.idle_timeout_s)
        return CloseReason.IDLE

    def answer_written(self, peer: str, payload: bytes) -> None:
        """An answer left for its terminal."""
        if self.trace is not None:
            self.trace.record(direction="out", link="pos", peer=peer, payload=payload)
        txnlog.log_pos_answer("nac", payload)

    def terminal_send_failed(self, lost: int) -> None:
        """A terminal took no answer for ``send_timeout_s``: ``lost`` answers were not written (the shell closes
        the connection and then reports :meth:`terminal_closed` with no reason: this counted it)."""
        self.stats.closed[CloseReason.SEND_FAILED] += 1
        self.stats.dropped[DropReason.TERMINAL_NOT_READING] += lost

    @property
    def answers_queued(self) -> int:
        """Answers waiting in every terminal's sink (a gauge of the metrics)."""
        return sum(len(sink) for sink in self._terminals.values())

    # -- upstream ------------------------------------------------------------------------------------------

    def link_connect_failed(self, group: str, member: Member, exc: BaseException) -> None:
        self.stats.members[str(member)].connect_failures += 1
        log.debug("route %s: cannot connect to %s (%s)", group, member, type(exc).__name__)

    def link_opened(self, group: str, member: Member, peer: str, sink: LinkSink) -> int:
        """A connection to ``member`` of ``group`` is open: its ``link_id``."""
        link_id = self.router.link_up(group, str(member))
        self._links[link_id] = _Link(group=group, member=member, peer=peer, sink=sink)
        self.groups_up.add(group)
        if self.on_all_groups_up is not None and self.table.groups.keys() <= self.groups_up:
            done, self.on_all_groups_up = self.on_all_groups_up, None
            done()
        log.info("route %s: connected to %s (link %d)", group, member, link_id)
        return link_id

    def link_frame(self, link_id: int, payload: bytes) -> None:
        """One answer from a front-end: delivered to its terminal or dropped (a draining link that has nothing
        live left is closed)."""
        link = self._links[link_id]
        if self.trace is not None:
            self.trace.record(direction="in", link="pos", peer=str(link.member), payload=payload)
        decision = self.router.from_upstream(link_id, payload)
        if isinstance(decision, Deliver):
            self._deliver(decision)
        else:
            log.info("route %s: answer from %s dropped: %s", link.group, link.member, decision.reason)
        if link.draining:
            self._close_if_drained(link_id, link)

    def link_framing_error(self, link_id: int, exc: FramingError) -> None:
        link = self._links[link_id]
        log.warning("route %s: %s sent a bad frame (%s), reconnecting", link.group, link.member, exc)

    def link_ended(self, link_id: int, exc: BaseException) -> None:
        link = self._links[link_id]
        log.info("route %s: connection to %s ended (%s)", link.group, link.member, type(exc).__name__)

    def link_lost(self, link_id: int) -> bool:
        """The upstream connection is gone: its requests in flight are dropped. ``True`` if it was being
        drained (its replacement keeps the member connected: do not reconnect)."""
        link = self._links.pop(link_id)
        dropped = self.router.link_down(link_id)
        if link.draining:
            log.info("route %s: drained connection to %s closed (link %d)", link.group, link.member, link_id)
        else:
            log.warning("route %s: lost %s, %d request(s) in flight dropped", link.group, link.member, dropped)
        return link.draining

    # -- time ----------------------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When :meth:`expire` has work next (``None``: no request waits; see :attr:`on_first_deadline`)."""
        return self.router.next_deadline()

    def expire(self, now: float) -> list[tuple[str, Member]]:
        """Time out overdue requests. A link holding too many timed-out requests is recycled: it drains (and is
        closed once nothing live is left on it), and the shell opens the returned replacements at once, so the
        terminals whose requests are on it lose nothing (closing frees the quarantined addresses)."""
        replacements: list[tuple[str, Member]] = []
        for close in self.router.expire(now):
            link = self._links.get(close.link_id)
            if link is None or link.draining:
                continue
            link.draining = True
            log.warning("upstream %s: recycling (%s): draining, a new connection opens now", link.peer, close.reason)
            replacements.append((link.group, link.member))
        for link_id, link in list(self._links.items()):
            if link.draining:  # its last live request may just have timed out
                self._close_if_drained(link_id, link)
        return replacements

    def unreachable(self, window: float) -> RoutesUnreachable | None:
        """The error to end the NAC with if some route group has had no member connected by now."""
        missing = sorted(set(self.table.groups) - self.groups_up)
        if not missing:
            return None
        members = ", ".join(str(m) for group in missing for m in self.table.groups[group])
        return RoutesUnreachable(
            "front-end", members, "connect", f"no member of route group {', '.join(missing)} within {window:g} s"
        )

    # -- helpers -------------------------------------------------------------------------------------------

    def _forward(self, forward: Forward) -> None:
        """Hand the request to its link's sink: requests forwarded in one loop turn share its write."""
        if self.on_first_deadline is not None:
            wake, self.on_first_deadline = self.on_first_deadline, None
            wake()  # the timeout sweep had nothing to wait for
        link = self._links.get(forward.link_id)
        if link is None:
            return  # the link died an instant ago; link_down has counted this request as dropped
        if self.trace is not None:
            self.trace.record(direction="out", link="pos", peer=link.peer, payload=forward.payload)
        link.sink.send(forward.payload)

    def _deliver(self, deliver: Deliver) -> None:
        sink = self._terminals.get(deliver.terminal_id)
        scripted = self._scripted
        # a rule may mangle an answer or deliver it twice (nac.scripted); otherwise it goes as it came
        payloads = [deliver.payload] if scripted is None else scripted.on_answer(deliver.terminal_id, deliver.payload)
        for payload in payloads:
            if sink is None or not sink.put(payload):
                self.stats.dropped[DropReason.TERMINAL_NOT_READING] += 1

    def _close_if_drained(self, link_id: int, link: _Link) -> None:
        if self.router.live_requests(link_id) == 0:
            link.sink.close()  # the shell sees the end and reports link_lost, which frees the addresses


__all__ = ["Delay", "LinkSink", "NacCore", "RoutesUnreachable", "TerminalSink"]
