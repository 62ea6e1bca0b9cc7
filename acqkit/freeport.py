"""A free port for a service about to listen: chosen below the kernel's ephemeral range, so no process's outgoing
connection can take it between the choice and the service's bind."""

from __future__ import annotations

import random
import socket
from pathlib import Path
from typing import Final

#: Where the kernel's ephemeral ports start when /proc does not say (Linux's default).
DEFAULT_EPHEMERAL_LOW: Final = 32768
#: The lowest port :func:`free_port` hands out.
LOWEST_SERVICE_PORT: Final = 10000
#: Ports tried before :func:`free_port` gives up.
FREE_PORT_TRIES: Final = 200


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return DEFAULT_EPHEMERAL_LOW


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now, below the kernel's ephemeral range: a port the kernel picked (bind to 0) is
    ephemeral, and any process's outgoing connection may take it before the service that is to listen there
    starts (seen: a merchant service refused with "address already in use" while its peers were connecting)."""
    low = _ephemeral_low()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(FREE_PORT_TRIES):
        port = random.randrange(LOWEST_SERVICE_PORT, low)  # a port number, not a secret
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
            return port
    raise OSError(f"no free port on {host} between {LOWEST_SERVICE_PORT} and {low} after {FREE_PORT_TRIES} tries")
