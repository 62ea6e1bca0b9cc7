"""Real-socket helpers for the NAC tests: an echo front-end, a NAC under test, terminals."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Callable

import anyio
import anyio.abc

from acqkit.netio import FramedConnection, connect, serve_tcp
from acqkit.rules import RuleBook
from nac.limits import NacLimits
from nac.server import NacPorts, NacServer
from tests.nac.helpers import ECHO_MARKER, echo_answer, table
from wire.tpdu import Tpdu

STEP_TIMEOUT_S = 5.0
#: A request whose body contains this is answered only after SLOW_DELAY_S; NEVER is not answered at all.
SLOW = b"slow"
SLOW_DELAY_S = 0.6
NEVER = b"never"


class EchoFrontEnd:
    """Answers each frame with DST/SRC swapped, the rest echoed, then a marker and its own name. Several
    requests are answered concurrently, each after a small delay taken from its bytes, so answers on one
    connection come back out of order."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.seen_src: list[str] = []
        self.seen: list[bytes] = []  # the requests' bytes after the TPDU, in the order they came
        self.answered = 0

    async def handle(self, conn: FramedConnection) -> None:
        async with anyio.create_task_group() as tg:
            while (payload := await conn.receive()) is not None:
                self.seen_src.append(Tpdu.parse(payload).src)
                self.seen.append(payload[5:])
                tg.start_soon(self._answer, conn, payload)

    async def _answer(self, conn: FramedConnection, payload: bytes) -> None:
        if NEVER in payload:
            return
        await anyio.sleep(SLOW_DELAY_S if SLOW in payload else (sum(payload) % 4) / 1000)
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            await conn.send(echo_answer(payload) + self.name.encode())
            self.answered += 1


def answer_body(request_payload: bytes, member: str) -> bytes:
    """What a terminal gets back for ``request_payload`` answered by ``member``, after its 5 TPDU bytes."""
    return request_payload[5:] + ECHO_MARKER + member.encode()


async def start_member(
    tg: anyio.abc.TaskGroup, front_end: EchoFrontEnd, port: int = 0
) -> tuple[int, anyio.CancelScope]:
    """Run ``front_end`` on ``port``; cancelling the returned scope kills it (and its connections)."""
    scope = anyio.CancelScope()

    async def run(*, task_status: anyio.abc.TaskStatus[int]) -> None:
        with scope:
            await serve_tcp("127.0.0.1", port, front_end.handle, name=front_end.name, task_status=task_status)

    bound: int = await tg.start(run)
    return bound, scope


async def wait_until(condition: Callable[[], bool], timeout: float = STEP_TIMEOUT_S) -> None:
    """Poll NAC state that has no event of its own (a member being connected), under a deadline."""
    with anyio.fail_after(timeout):
        while not condition():  # noqa: ASYNC110 - the state itself is what we wait for
            await anyio.sleep(0.01)


@contextlib.asynccontextmanager
async def running_nac(
    *member_ports: int, rules: RuleBook | None = None, **limits: float
) -> AsyncIterator[tuple[NacServer, NacPorts]]:
    """A NAC routing 0003 to ``member_ports``, all members connected, stopped on exit."""
    server = NacServer(table(*member_ports), NacLimits(**limits), rules=rules)  # type: ignore[arg-type]
    async with anyio.create_task_group() as tg:
        ports: NacPorts = await tg.start(functools.partial(server.serve, "127.0.0.1", 0, status_port=0))
        await wait_until(lambda: all(m.up for m in server.stats.members.values()))
        yield server, ports
        tg.cancel_scope.cancel()


async def terminal(port: int) -> FramedConnection:
    return await connect("127.0.0.1", port, timeout=STEP_TIMEOUT_S)


async def deaf_terminal(port: int) -> FramedConnection:
    """A terminal whose socket nobody reads: anyio's own TCP stream reads only when asked (acqsim's
    ``connect`` reads what arrives before the first receive), so the kernel buffers fill as on a stuck device."""
    with anyio.fail_after(STEP_TIMEOUT_S):
        stream = await anyio.connect_tcp("127.0.0.1", port)
    return FramedConnection(stream, peer="deaf terminal")


async def round_trip(conn: FramedConnection, payload: bytes) -> bytes:
    await conn.send(payload)
    answer = await conn.receive(STEP_TIMEOUT_S)
    assert answer is not None, "the NAC closed the connection"
    return answer
