"""How a service's command line and configuration become its serving options (connection cap, TLS)."""

from __future__ import annotations

import dataclasses
import ssl
from pathlib import Path
from typing import Final

from acqkit.config import AcqsimConfig
from acqkit.netio import DEFAULT_MAX_CONNECTIONS
from acqkit.tls import service_tls


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Serving:
    """What a service passes to ``serve_tcp`` (``server_tls``) and to its clients (``client_tls``)."""

    max_connections: int = DEFAULT_MAX_CONNECTIONS
    server_tls: ssl.SSLContext | None = None
    client_tls: ssl.SSLContext | None = None

    @property
    def summary(self) -> str:
        """One line for the service's start-up output."""
        transport = "mutual TLS" if self.server_tls is not None else "plain TCP"
        return f"{transport} between services, at most {self.max_connections} connections"


def serving_for(
    service: str,
    *,
    tls_dir: Path | None,
    max_connections: int | None,
    config: AcqsimConfig | None = None,
    configured_max: int = DEFAULT_MAX_CONNECTIONS,
) -> Serving:
    """``--tls-dir`` wins; else ``config.tls`` turns TLS on with ``config.tls_dir``. ``--max-connections``
    wins over ``configured_max``. Raises ``ValueError`` for a cap below 1 and ``TlsMaterialMissing``."""
    cap = configured_max if max_connections is None else max_connections
    if cap < 1:
        raise ValueError(f"--max-connections must be at least 1, not {cap}")
    directory = tls_dir if tls_dir is not None else (config.tls_dir if config is not None and config.tls else None)
    contexts = service_tls(directory, service)
    if contexts is None:
        return Serving(max_connections=cap)
    return Serving(max_connections=cap, server_tls=contexts.server, client_tls=contexts.client)


#: Plain TCP with the default connection cap (what a service serves with unless told otherwise).
PLAIN: Final = Serving()
