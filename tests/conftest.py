"""Shared test configuration.

- hypothesis: the ``ci`` profile (fewer examples, no deadline, derandomised) loads itself when ``CI`` is set;
  locally the ``dev`` profile runs more examples.
- anyio: async tests marked ``@pytest.mark.anyio`` run on both backends, asyncio and trio.
- ``tls_ca_dir``: a TEST CA and the services' certificates, made once a run (tests of the TLS shells).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=40,
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


@pytest.fixture(scope="session")
def tls_ca_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TEST CA and every service's certificate under it (``acqkit.tls.create_all``), shared by the run."""
    from acqkit.tls import create_all

    directory = tmp_path_factory.mktemp("tls-ca")
    create_all(directory)
    return directory
