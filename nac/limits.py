"""The NAC's named limits and timeouts, with their defaults (all configurable from the command line)."""

from __future__ import annotations

import dataclasses
from typing import Final

from acqkit.config import NAC_MAX_CONNECTIONS
from wire.framing import DEFAULT_MAX_FRAME_LEN

#: Largest frame (bytes after the length prefix) accepted from a terminal or a front-end.
MAX_FRAME_LEN: Final = DEFAULT_MAX_FRAME_LEN
#: Terminal connections open at once; one more is accepted and closed at once (counted as rejected).
MAX_CONNECTIONS: Final = NAC_MAX_CONNECTIONS
#: Requests one terminal connection may have waiting for an answer; a further request is dropped.
MAX_IN_FLIGHT_PER_CONNECTION: Final = 4
#: A terminal connection that sends nothing for this long is closed.
IDLE_TIMEOUT_S: Final = 300.0
#: A terminal's idle deadline is one cancel scope per connection, moved on with its frames at most this often
#: (and at most every tenth of the idle timeout): not a scope per read. A terminal is closed after between
#: ``idle_timeout_s`` less that step and ``idle_timeout_s`` without a frame.
IDLE_CHECK_S: Final = 1.0
#: A request unanswered this long stops counting against its terminal (its return address stays
#: quarantined until the answer or the upstream connection's end, see ``docs/nac.md``).
UPSTREAM_ANSWER_TIMEOUT_S: Final = 30.0
#: Connecting to one front-end member may take this long.
CONNECT_TIMEOUT_S: Final = 3.0
#: Reconnect backoff: first wait, doubling up to the maximum, reset after a successful connection.
RECONNECT_BACKOFF_MIN_S: Final = 0.05
RECONNECT_BACKOFF_MAX_S: Final = 5.0
#: Timed-out requests one upstream connection may hold before the NAC recycles that connection (which frees
#: their return addresses: no answer can come on a closed connection).
MAX_STALE_PER_LINK: Final = 1024
#: Return addresses 0001..FFFF (0000 is the terminal's own SRC and never assigned).
ADDRESS_POOL_SIZE: Final = 0xFFFF
#: How long the shell may wait for one write to a peer (a frame, or the answers queued for a terminal) before
#: giving that peer up.
SEND_TIMEOUT_S: Final = 10.0


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class NacLimits:
    max_frame_len: int = MAX_FRAME_LEN
    max_connections: int = MAX_CONNECTIONS
    max_in_flight: int = MAX_IN_FLIGHT_PER_CONNECTION
    idle_timeout_s: float = IDLE_TIMEOUT_S
    answer_timeout_s: float = UPSTREAM_ANSWER_TIMEOUT_S
    connect_timeout_s: float = CONNECT_TIMEOUT_S
    backoff_min_s: float = RECONNECT_BACKOFF_MIN_S
    backoff_max_s: float = RECONNECT_BACKOFF_MAX_S
    max_stale_per_link: int = MAX_STALE_PER_LINK
    address_pool_size: int = ADDRESS_POOL_SIZE
    send_timeout_s: float = SEND_TIMEOUT_S

    def __post_init__(self) -> None:
        if not 0 < self.max_frame_len <= 0xFFFF:
            raise ValueError(f"max_frame_len must be 1..65535, not {self.max_frame_len}")
        if not 0 < self.address_pool_size <= ADDRESS_POOL_SIZE:
            raise ValueError(f"address_pool_size must be 1..{ADDRESS_POOL_SIZE}, not {self.address_pool_size}")
        for name in ("max_connections", "max_in_flight", "max_stale_per_link"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        for name in ("idle_timeout_s", "answer_timeout_s", "connect_timeout_s", "backoff_min_s", "send_timeout_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.backoff_max_s < self.backoff_min_s:
            raise ValueError("backoff_max_s must not be below backoff_min_s")
