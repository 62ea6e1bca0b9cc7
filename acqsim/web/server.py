"""Serving the web view: uvicorn on a socket bound here, inside the caller's task group.

uvicorn runs on asyncio only, so the web view does too (``acqsim web`` and ``acqsim up --web`` run on asyncio;
the services started by ``acqsim up`` keep their own backend). Signals stay with acqsim's own runner: the
embedded server installs no handlers. When the caller's scope is cancelled the server is told to stop, open
event streams end at their next poll, and the rest is given ``STOP_TIMEOUT_S``.
"""

from __future__ import annotations

import contextlib
import functools
import socket
from collections.abc import Iterator
from typing import Final

import anyio
import anyio.abc
import uvicorn

from acqkit.config import AcqsimConfig, Endpoint
from acqkit.netio import serve_tcp
from acqsim.demo import LossyRelay
from acqsim.web.app import WebContext, create_app
from acqsim.web.scenarios import TryIt

#: uvicorn's grace for open connections at shutdown, and our bound on the whole stop.
GRACEFUL_S: Final = 1
STOP_TIMEOUT_S: Final = 5.0
DEFAULT_WEB_PORT: Final = 8080


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # Ctrl-C and SIGTERM belong to the acqsim command that embeds the server


class WebBindError(OSError):
    """The web view cannot listen where it was asked to (the port is taken, the address is not ours)."""


def bind_failure(exc: BaseException) -> WebBindError | None:
    """The :class:`WebBindError` inside ``exc`` (task groups wrap what their tasks raise), if there is one."""
    if isinstance(exc, WebBindError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            if (found := bind_failure(inner)) is not None:
                return found
    return None


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket (port 0: one the OS picks); ``OSError`` if the address is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family)
    except OSError as exc:
        raise WebBindError(exc.errno, f"the web view cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.setblocking(False)
    return sock


async def serve_web(
    config: AcqsimConfig,
    nac: Endpoint,
    host: str,
    port: int,
    *,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the web view for services whose NAC is ``nac`` and whose traces are in ``config.trace_dir``.
    Reports the port it listens on through ``task_status``; runs until cancelled. :class:`WebBindError` if it
    cannot listen."""
    sock = bind(host, port)
    relay = LossyRelay(nac)
    async with anyio.create_task_group() as tg:
        relay_port = await tg.start(functools.partial(serve_tcp, "127.0.0.1", 0, relay.handle, name="web-relay"))
        context = WebContext(config=config, tryit=TryIt(config, relay, relay_port))
        server = _EmbeddedServer(
            uvicorn.Config(
                create_app(context),
                log_level="warning",
                access_log=False,
                lifespan="off",
                timeout_graceful_shutdown=GRACEFUL_S,
            )
        )

        stop_requested = anyio.Event()

        async def stop_when_cancelled() -> None:
            try:
                await anyio.sleep_forever()
            finally:
                context.closing = True
                stop_requested.set()

        tg.start_soon(stop_when_cancelled)
        task_status.started(sock.getsockname()[1])
        try:
            with anyio.CancelScope(shield=True):  # uvicorn must be told to stop, not cancelled mid-request
                await _serve_until_stopped(server, sock, stop_requested)
        finally:
            sock.close()
        tg.cancel_scope.cancel()


async def _serve_until_stopped(server: uvicorn.Server, sock: socket.socket, stop_requested: anyio.Event) -> None:
    """Serve until ``stop_requested``; then uvicorn gets ``STOP_TIMEOUT_S`` to finish before it is cancelled."""
    async with anyio.create_task_group() as serving:

        async def serve() -> None:
            await server.serve(sockets=[sock])
            serving.cancel_scope.cancel()  # stopped (in time, or by itself): nothing left to wait for

        serving.start_soon(serve)
        await stop_requested.wait()
        server.should_exit = True
        await anyio.sleep(STOP_TIMEOUT_S)
        serving.cancel_scope.cancel()
