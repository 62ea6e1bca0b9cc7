"""The NAC service: terminal-side listener, persistent multiplexed upstream connections, status port.

Thin anyio shell around :class:`nac.router.Router`. Upstream: each route is a group of members; each member
keeps one persistent connection that carries many requests at once (answers are matched by return address),
reconnects with exponential backoff, and is skipped while down (round-robin over healthy members, so a dead
member fails over to the others). Requests in flight on a member that dies are dropped and counted; the
terminal's own timeout and reversal take it from there.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
from collections.abc import Mapping
from typing import Final

import anyio
import anyio.abc

from acqsim.netio import FramedConnection, connect, serve_tcp
from nac.router import DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION, Drop, Forward, Router
from wire.errors import FramingError
from wire.framing import DEFAULT_MAX_FRAME_LEN

log = logging.getLogger("acqsim.nac")

RECONNECT_MIN_S: Final = 0.05
RECONNECT_MAX_S: Final = 2.0
EXPIRY_TICK_S: Final = 0.5


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class NacLimits:
    max_frame_len: int = DEFAULT_MAX_FRAME_LEN
    max_connections: int = 10_000
    max_in_flight_per_connection: int = DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION
    idle_timeout_s: float = 300.0
    upstream_timeout_s: float = 30.0
    connect_timeout_s: float = 2.0


class UpstreamMember:
    def __init__(self, route: str, host: str, port: int, nac: Nac) -> None:
        self.route, self.host, self.port, self.nac = route, host, port, nac
        self.conn: FramedConnection | None = None
        self.in_flight: set[str] = set()
        self.sent = 0

    @property
    def name(self) -> str:
        return f"{self.host}:{self.port}"

    async def run(self) -> None:
        backoff = RECONNECT_MIN_S
        while True:
            try:
                self.conn = await connect(
                    self.host,
                    self.port,
                    timeout=self.nac.limits.connect_timeout_s,
                    max_frame_len=self.nac.limits.max_frame_len,
                )
            except (OSError, TimeoutError):
                await anyio.sleep(backoff)
                backoff = min(backoff * 2, RECONNECT_MAX_S)
                continue
            log.info("route %s: connected to %s", self.route, self.name)
            backoff = RECONNECT_MIN_S
            try:
                while (payload := await self.conn.receive()) is not None:
                    await self.nac.answer_from_upstream(self, payload)
            except (FramingError, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
                log.warning("route %s: upstream %s failed: %s", self.route, self.name, type(exc).__name__)
            finally:
                conn, self.conn = self.conn, None
                await conn.aclose()
            lost, self.in_flight = list(self.in_flight), set()
            self.nac.router.route_failed(self.route, lost, anyio.current_time())
            log.warning("route %s: upstream %s down, %d request(s) dropped", self.route, self.name, len(lost))

    async def send(self, forward: Forward) -> bool:
        conn = self.conn
        if conn is None:
            return False
        try:
            await conn.send(forward.payload)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            return False
        self.in_flight.add(forward.return_address)
        self.sent += 1
        return True


class Nac:
    def __init__(self, routes: Mapping[str, list[tuple[str, int]]], limits: NacLimits = NacLimits()) -> None:
        self.limits = limits
        self.router = Router(
            set(routes),
            max_in_flight_per_connection=limits.max_in_flight_per_connection,
            quarantine_s=2 * limits.upstream_timeout_s,
        )
        self.groups = {
            route: [UpstreamMember(route, h, p, self) for h, p in members] for route, members in routes.items()
        }
        self._round_robin = {route: itertools.cycle(range(len(m))) for route, m in self.groups.items()}
        self.terminals: dict[int, FramedConnection] = {}
        self._ids = itertools.count(1)
        self.connections_total = 0
        self.connections_refused = 0

    def stats(self) -> dict[str, object]:
        return {
            "connections_open": len(self.terminals),
            "connections_total": self.connections_total,
            "connections_refused": self.connections_refused,
            "in_flight": self.router.in_flight,
            "counters": dict(sorted(self.router.counters.items())),
            "upstreams": {
                route: [
                    {"member": m.name, "up": m.conn is not None, "sent": m.sent, "in_flight": len(m.in_flight)}
                    for m in members
                ]
                for route, members in self.groups.items()
            },
        }

    async def answer_from_upstream(self, member: UpstreamMember, payload: bytes) -> None:
        decision = self.router.from_upstream(payload, anyio.current_time())
        if isinstance(decision, Drop):
            log.info("dropped an answer from %s: %s", member.name, decision.reason)
            return
        member.in_flight.discard(f"{int.from_bytes(payload[1:3], 'big'):04X}")
        conn = self.terminals.get(decision.connection)
        if conn is None:
            self.router.counters["answers_dropped"] += 1
            return
        try:
            await conn.send(decision.payload)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            self.router.counters["answers_dropped"] += 1

    async def _forward(self, forward: Forward) -> None:
        members = self.groups[forward.route]
        for _ in range(len(members)):
            member = members[next(self._round_robin[forward.route])]
            if await member.send(forward):
                return
        self.router.counters[f"route_{forward.route}_no_upstream"] += 1
        self.router.route_failed(forward.route, [forward.return_address], anyio.current_time())

    async def handle_terminal(self, conn: FramedConnection) -> None:
        if len(self.terminals) >= self.limits.max_connections:
            self.connections_refused += 1
            log.warning("refusing %s: %d connections open", conn.peer, len(self.terminals))
            return
        connection = next(self._ids)
        self.terminals[connection] = conn
        self.connections_total += 1
        try:
            while (payload := await conn.receive(self.limits.idle_timeout_s)) is not None:
                decision = self.router.from_terminal(connection, payload, anyio.current_time())
                if isinstance(decision, Forward):
                    await self._forward(decision)
                    continue
                log.info("terminal %s: %s", conn.peer, decision.reason)
                if decision.close_connection:
                    return
        except FramingError as exc:
            self.router.counters["bad_frames"] += 1
            log.warning("terminal %s: %s; closing", conn.peer, exc)
        finally:
            del self.terminals[connection]
            self.router.connection_closed(connection, anyio.current_time())

    async def expire_forever(self) -> None:
        while True:
            await anyio.sleep(EXPIRY_TICK_S)
            self.router.expire(anyio.current_time(), self.limits.upstream_timeout_s)

    async def serve_status(self, conn: FramedConnection) -> None:
        await conn.stream.send(json.dumps(self.stats()).encode() + b"\n")


async def serve(
    host: str,
    port: int,
    *,
    nac: Nac,
    status_port: int | None = None,
    task_status: anyio.abc.TaskStatus[tuple[int, int | None]] = anyio.TASK_STATUS_IGNORED,
) -> None:
    async with anyio.create_task_group() as tg:
        for members in nac.groups.values():
            for member in members:
                tg.start_soon(member.run)
        tg.start_soon(nac.expire_forever)
        bound_status = None
        if status_port is not None:
            bound_status = await tg.start(
                lambda task_status: serve_tcp(
                    host, status_port, nac.serve_status, name="nac-status", task_status=task_status
                )
            )
        bound = await tg.start(
            lambda task_status: serve_tcp(
                host,
                port,
                nac.handle_terminal,
                name="nac",
                max_frame_len=nac.limits.max_frame_len,
                task_status=task_status,
            )
        )
        task_status.started((bound, bound_status))
