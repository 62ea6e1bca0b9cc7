"""Which clients may use the HSM, and which commands each may send: a pure policy, applied by the server.

Clients authenticate with mutual TLS (the runtime's ``tls = true``): the server's TLS context verifies the
client certificate against acqsim's local CA, and ``FramedConnection.peer_identity`` carries its subject CN.
With TLS on, a connection whose identity is not on ``[hsm] allowed_clients`` is closed before any command is
read (audited as refused); an allowed client sending a command outside its list is answered 68 (command
disabled). With TLS off there is no identity: every client is anonymous and allowed, and the HSM warns at
start — on plain TCP anyone who reaches the port can use it (docs/security.md, "The HSM boundary").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Final

from hsm_sim.errors import ErrorCode

#: The client name an audit entry carries for a connection without a verified identity.
ANONYMOUS: Final = "anonymous"
#: Default allow-list: only the front-end talks to the HSM (the supervisor provisions keys as "frontend" too).
DEFAULT_ALLOWED_CLIENTS: Final[Mapping[str, frozenset[str] | None]] = {"frontend": None}


@dataclasses.dataclass(frozen=True, slots=True)
class ClientPolicy:
    #: identity (certificate CN) → the commands it may send, or ``None`` for all.
    allowed: Mapping[str, frozenset[str] | None] = dataclasses.field(
        default_factory=lambda: dict(DEFAULT_ALLOWED_CLIENTS)
    )
    #: Whether connections must carry a verified identity (true when the HSM port is served over mutual TLS).
    require_identity: bool = False

    def admits(self, identity: str | None) -> bool:
        """Whether a connection with this identity may send anything at all."""
        if identity is None:
            return not self.require_identity
        return identity in self.allowed

    def authorise(self, identity: str | None, command: str) -> ErrorCode | None:
        """``None`` if ``identity`` may send ``command``, else the error code to answer (17 or 68)."""
        if not self.admits(identity):
            return ErrorCode.NOT_AUTHORISED
        if identity is None:
            return None
        permitted = self.allowed.get(identity)
        return None if permitted is None or command in permitted else ErrorCode.COMMAND_DISABLED
