"""Running a service from the CLI: the anyio backend choice and a clean Ctrl-C."""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any, Final

import anyio

#: ``ACQSIM_BACKEND=trio`` runs services on trio; the default is asyncio (with uvloop when installed).
BACKEND_ENV: Final = "ACQSIM_BACKEND"


def backend_options() -> tuple[str, dict[str, Any]]:
    backend = os.environ.get(BACKEND_ENV, "asyncio")
    if backend == "asyncio" and sys.platform != "win32":
        try:
            import uvloop  # noqa: F401
        except ImportError:
            return backend, {}
        return backend, {"use_uvloop": True}
    return backend, {}


def run_service(main: Callable[[], Awaitable[None]]) -> int:
    backend, options = backend_options()
    try:
        anyio.run(main, backend=backend, backend_options=options)
    except KeyboardInterrupt:
        return 0
    return 0


def announce(service: str, host: str, port: int) -> None:
    """The one line a supervisor waits for: ``READY <service> <host>:<port>``."""
    print(f"READY {service} {host}:{port}", flush=True)
