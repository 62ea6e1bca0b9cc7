"""The ledger's host-link server around :class:`core_ledger.service.LedgerService`.

Two paths, one set of rules (:class:`core_ledger.hostcore.HostCore`): on asyncio without TLS the connections are
protocol callbacks (``core_ledger/callbackshell.py`` on :mod:`acqkit.frameprotocol`: no task per connection or
request); on trio, and under TLS, a reader task and a writer task per connection (``core_ledger/taskshell.py``
on :mod:`acqkit.netio`). On both, requests are decided as they are read and answered in request order per
connection as their group-commit batches become durable, every answer then durable in one write; up to
``MAX_IN_FLIGHT_PER_CONNECTION`` are in flight per connection, so requests pipelined on one connection share a
group commit. A request a rule delays, drops, answers or repeats, and a malformed one, is answered on its own, so
its answer may overtake or follow others (the client matches answers by MTI class, 32, 37).

A bad message costs only itself: one that decodes but lacks what the operation needs is answered 30 (format
error); one that does not decode is answered 30 too when its MTI, 32 and 37 could be read (they come before
the bad field), else dropped with a WARNING naming the field and offset. Either way the connection and every
other request on it carry on. Only a framing error (the length prefix: the stream is out of step) closes it.

Fail-stop: once the service fails (:class:`core_ledger.service.LedgerFailStop`: a commit failed, or was not
durable within its timeout), requests in flight get their 96 (a timed-out one: nothing, its outcome is unknown)
for up to ``FAIL_STOP_DRAIN_S``, then :func:`serve` raises ``LedgerFailStop`` and the process exits.
"""

from __future__ import annotations

import functools
from typing import Final

import anyio
import anyio.abc

from acqkit.frameprotocol import callbacks_apply, serve_frames
from acqkit.netio import serve_tcp
from acqkit.rules import RuleBook
from acqkit.serving import PLAIN, Serving
from acqkit.traceflush import flush_traces
from core_ledger.callbackshell import session_factory
from core_ledger.engine import LedgerEngine
from core_ledger.history import RECENT_TXNS_KEPT
from core_ledger.hostcore import HostCore
from core_ledger.service import LedgerFailStop, LedgerService
from core_ledger.store import LedgerStore
from core_ledger.taskshell import Limits, task_handler
from wire.trace import TraceWriter

#: A connection silent this long is closed.
IDLE_TIMEOUT_S: Final = 600.0
#: Longest an answer may wait for the peer to take it (a peer that stops reading loses its connection).
SEND_TIMEOUT_S: Final = 10.0
#: Requests one connection may have in flight; beyond it the server reads nothing more until slots free.
MAX_IN_FLIGHT_PER_CONNECTION: Final = 256
#: After a fail-stop, how long requests in flight may take to get their 96 before the server ends.
FAIL_STOP_DRAIN_S: Final = 2.0
#: The task path's reader pushes its idle deadline back at most this often (not on every frame: moving a deadline
#: costs about as much as a small read): a connection is closed after between IDLE_TIMEOUT_S and IDLE_TIMEOUT_S +
#: IDLE_SLACK_S with nothing read. The callback path's idle timer is exact (one timer, re-armed when it fires).
IDLE_SLACK_S: Final = 1.0


async def serve(
    host: str,
    port: int,
    *,
    service: LedgerService | None = None,
    store: LedgerStore | None = None,
    trace: TraceWriter | None = None,
    serving: Serving = PLAIN,
    rules: RuleBook | None = None,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the host link on ``host:port`` until cancelled; ``task_status.started(port)`` gives the bound port.

    Pass a ready ``service``, or a ``store`` (the service is then built over what the store holds). Raises
    :class:`LedgerFailStop` once the service has failed (a commit failed or hung) and its answers are out.
    ``rules``: scripted answers and faults (:mod:`acqkit.rules`): a matching request is answered with the
    rule's code without being posted, delayed, dropped, answered twice, or closes its connection (unposted,
    unanswered; the other requests in flight on it are answered if they can be, before it closes).
    """
    if (service is None) == (store is None):
        raise TypeError("serve() needs exactly one of service= or store=")
    if service is None:
        assert store is not None
        loaded = await anyio.to_thread.run_sync(functools.partial(store.load, keep=RECENT_TXNS_KEPT))
        service = LedgerService(store, LedgerEngine(loaded))
    ledger = service
    core = HostCore(ledger, rules=rules, tracer=trace)
    if callbacks_apply(serving.server_tls):
        listening = functools.partial(
            serve_frames,
            host,
            port,
            session_factory(core, MAX_IN_FLIGHT_PER_CONNECTION),
            name="ledger",
            max_connections=serving.max_connections,
            idle_timeout=IDLE_TIMEOUT_S,
            send_timeout=SEND_TIMEOUT_S,
        )
    else:
        limits = Limits(
            idle_s=IDLE_TIMEOUT_S,
            idle_slack_s=IDLE_SLACK_S,
            send_s=SEND_TIMEOUT_S,
            max_in_flight=MAX_IN_FLIGHT_PER_CONNECTION,
        )
        listening = functools.partial(
            serve_tcp,
            host,
            port,
            task_handler(core, limits),
            name="ledger",
            max_connections=serving.max_connections,
            tls=serving.server_tls,
        )
    async with anyio.create_task_group() as tg:
        await tg.start(ledger.run_flusher)
        if core.tracer is not None:
            await tg.start(flush_traces, core.tracer)
        bound = await tg.start(listening)
        task_status.started(bound)
        cause = await ledger.wait_stopped()
        with anyio.move_on_after(FAIL_STOP_DRAIN_S):
            await core.in_flight.wait_idle()
        tg.cancel_scope.cancel()
    raise LedgerFailStop(cause)
