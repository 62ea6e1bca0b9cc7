"""The configuration's smallest terms — an endpoint, the loopback address, the error that names a table and key —
kept apart from :mod:`acqkit.config` so that the modules it is built from (:mod:`acqkit.schemeconfig`) can use
them without importing it back."""

from __future__ import annotations

import dataclasses
from typing import Final

LOOPBACK: Final = "127.0.0.1"
#: The highest TCP port number.
MAX_PORT: Final = 0xFFFF


class ConfigError(ValueError):
    """The configuration is not valid; the message names the table and key (``table``, ``key``: where it is,
    so that :func:`load_config` can add the file and line)."""

    def __init__(self, message: str, *, table: str = "", key: str = "") -> None:
        super().__init__(message)
        self.table, self.key = table, key


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        try:
            host, port = split_host_port(text)
        except ValueError:
            raise ConfigError(f"{text!r} is not host:port") from None
        return cls(host=host, port=port)


def split_host_port(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (an IPv6 host in brackets) → (host, port 0..65535); ``ValueError`` otherwise."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= MAX_PORT:
        raise ValueError(text)
    return host.strip("[]"), int(port)
