"""Running a service from the CLI: the anyio backend choice and a clean Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any, Final, Protocol, TypeVar

import anyio
import anyio.abc

from acqkit.collector import die_young, freeze_start_up
from acqkit.config import ConfigError
from acqkit.exitcodes import EXIT_UNREACHABLE
from acqkit.extras import require
from acqkit.peerclient import PeerUnavailable, connect_within

_E = TypeVar("_E", bound=BaseException)


class _Closeable(Protocol):
    async def aclose(self) -> None: ...


_C = TypeVar("_C", bound=_Closeable)

#: ``ACQSIM_BACKEND=trio`` runs services on trio; the default is asyncio (with uvloop when installed).
BACKEND_ENV: Final = "ACQSIM_BACKEND"


def backend_options() -> tuple[str, dict[str, Any]]:
    """The anyio backend and its options from ``ACQSIM_BACKEND``; raises :class:`MissingExtra` for trio without
    the trio extra, and :class:`ConfigError` for a backend anyio does not have."""
    backend = os.environ.get(BACKEND_ENV, "asyncio")
    if backend not in ("asyncio", "trio"):
        raise ConfigError(f"{BACKEND_ENV}={backend!r}: use asyncio or trio")
    if backend == "trio":
        require("trio", "trio", f"{BACKEND_ENV}=trio")
    if backend == "asyncio" and sys.platform != "win32":
        try:
            import uvloop  # noqa: F401
        except ImportError:
            return backend, {}
        return backend, {"use_uvloop": True}
    return backend, {}


def run_service(main: Callable[[], Awaitable[None]]) -> int:
    """Run a service's ``main`` on the chosen backend until it returns, or until SIGTERM (the supervisor's stop)
    or SIGINT cancels it: every service then ends through its own ``finally`` blocks — its last trace records
    flushed, its audit log closed — rather than dying at SIGTERM's default action with them unwritten."""
    backend, options = backend_options()

    async def until_stopped() -> None:
        failed: list[Exception] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(stop_on_signal, tg.cancel_scope)
            try:
                await main()
            except Exception as exc:  # raised below as main raised it, not wrapped in this task group's group
                failed.append(exc)
            tg.cancel_scope.cancel()  # main is done: stop listening for signals
        if failed:
            raise failed[0]

    try:
        anyio.run(until_stopped, backend=backend, backend_options=options)
    except KeyboardInterrupt:  # a Ctrl-C before the signal receiver was in place
        return 0
    return 0


def leaves(group: BaseExceptionGroup[BaseException], kind: type[_E]) -> list[_E]:
    """The exceptions of type ``kind`` in ``group``, however deeply task groups nested them."""
    found: list[_E] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            found += leaves(exc, kind)
        elif isinstance(exc, kind):
            found.append(exc)
    return found


def announce(service: str, host: str, port: int, *, objects_die_young: bool = True) -> None:
    """The one line a supervisor waits for: ``READY <service> <host>:<port>``. Start-up's objects are set aside
    first (:func:`acqkit.collector.freeze_start_up`). ``objects_die_young``: collect the young generation seldom
    (:func:`acqkit.collector.die_young`); ``False`` for a service that keeps what it serves (the ledger's recent
    transactions), where a young collection scans everything kept since the last one and CPython's default keeps
    each pass short."""
    freeze_start_up()
    if objects_die_young:
        die_young()
    print(f"READY {service} {host}:{port}", flush=True)


async def stop_on_signal(scope: anyio.CancelScope) -> None:
    """Cancel ``scope`` at SIGTERM (the supervisor's stop) or SIGINT, so the service ends as after Ctrl-C."""
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for _ in signals:
            scope.cancel()
            return


class PeerStillUnreachable(Exception):
    """A peer the service needs did not answer within its start-up window (exit 3, one line naming it)."""


async def peer(stack: contextlib.AsyncExitStack, connect: Callable[[], Awaitable[_C]], window: float) -> _C:
    """``connect()`` within ``window`` seconds (:func:`acqkit.peerclient.connect_within`), the client closed with
    ``stack``; raises :class:`PeerStillUnreachable` naming the peer."""
    try:
        client = await connect_within(connect, window)
    except PeerUnavailable as exc:
        raise PeerStillUnreachable(f"{exc} (still so after {window:g} s)") from None
    stack.push_async_callback(client.aclose)
    return client


Serve = Callable[[contextlib.AsyncExitStack, anyio.abc.TaskGroup], Awaitable[None]]


def run_peered_service(command: str, serve: Serve) -> int:
    """Run a service that dials peers at start-up: ``serve(stack, tg)`` connects them with :func:`peer` and
    starts serving in ``tg``; SIGTERM or SIGINT stops it (:func:`run_service`), then its peers are closed. A peer
    still unreachable prints ``<command>: <why>`` on stderr and exits 3."""
    unreachable: list[str] = []

    async def main() -> None:
        async with contextlib.AsyncExitStack() as stack, anyio.create_task_group() as tg:
            try:
                await serve(stack, tg)
            except PeerStillUnreachable as exc:
                unreachable.append(str(exc))
                tg.cancel_scope.cancel()

    code = run_service(main)
    if unreachable:
        print(f"{command}: {unreachable[0]}", file=sys.stderr, flush=True)
        return EXIT_UNREACHABLE
    return code
