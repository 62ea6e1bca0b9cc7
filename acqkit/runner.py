"""Running a service from the CLI: the anyio backend choice and a clean Ctrl-C."""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

import anyio

from acqkit.config import ConfigError
from acqkit.extras import require

_E = TypeVar("_E", bound=BaseException)

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
    backend, options = backend_options()
    try:
        anyio.run(main, backend=backend, backend_options=options)
    except KeyboardInterrupt:
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


def announce(service: str, host: str, port: int) -> None:
    """The one line a supervisor waits for: ``READY <service> <host>:<port>``."""
    print(f"READY {service} {host}:{port}", flush=True)
