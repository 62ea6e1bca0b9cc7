"""The modes a service's two shells are tested in, for tests that run one behaviour on both: the callback path
(asyncio, plain TCP) and the task path (trio; asyncio under mutual TLS). A test module adds ``ON_EVERY_SHELL`` to
its ``pytestmark``: each test then takes ``mode`` (a key of ``MODES``) and runs on that mode's anyio backend."""

from __future__ import annotations

from typing import Final

import pytest

#: Each mode: the backend, and whether the service serves mutual TLS. Only the first is the callback path.
MODES: Final = {"callbacks": ("asyncio", False), "tasks-trio": ("trio", False), "tasks-tls": ("asyncio", True)}

#: Every test of a module in each mode, ``anyio_backend`` set to the mode's backend.
ON_EVERY_SHELL: Final = pytest.mark.parametrize(
    ("mode", "anyio_backend"), [(name, backend) for name, (backend, _tls) in MODES.items()], ids=list(MODES)
)
