"""What the router decides: frozen dataclasses the I/O shell carries out, and the reasons it names."""

from __future__ import annotations

import dataclasses
import enum

from wire.errors import FramingError
from wire.framing import OVERSIZED, TRUNCATED


class DropReason(enum.StrEnum):
    """Why a frame was dropped while its connection stays open."""

    UNKNOWN_DESTINATION = "unknown_destination"  # no route for the TPDU DST
    NO_UPSTREAM = "no_upstream"  # the route's group has no member connected
    IN_FLIGHT_LIMIT = "in_flight_limit"  # the terminal already waits for max_in_flight answers
    ADDRESS_POOL_EXHAUSTED = "address_pool_exhausted"  # every return address is in use or quarantined
    BAD_ANSWER_TPDU = "bad_answer_tpdu"  # a front-end's answer is shorter than a TPDU or has a wrong ID
    UNKNOWN_RETURN_ADDRESS = "unknown_return_address"  # answer DST not in flight on that connection
    TERMINAL_GONE = "terminal_gone"  # late answer: its terminal closed before it came
    ANSWER_AFTER_TIMEOUT = "answer_after_timeout"  # late answer: the answer timeout had expired
    TERMINAL_NOT_READING = "terminal_not_reading"  # the terminal's outbox is full or closing


class CloseReason(enum.StrEnum):
    """Why a connection was closed by the NAC."""

    BAD_LENGTH = "bad_length"  # zero length prefix
    OVERSIZED_FRAME = "oversized_frame"  # length prefix over max_frame_len
    TRUNCATED_FRAME = "truncated_frame"  # peer closed in the middle of a frame
    TOO_SHORT = "too_short"  # frame shorter than TPDU + header
    BAD_TPDU_ID = "bad_tpdu_id"  # first byte is not 0x60
    IDLE = "idle"  # nothing received for idle_timeout_s
    TOO_MANY_CONNECTIONS = "too_many_connections"  # over max_connections
    STALE_ADDRESSES = "stale_addresses"  # an upstream connection holds too many timed-out requests
    SEND_FAILED = "send_failed"  # the peer does not take our frames
    BY_RULE = "by_rule"  # a rules file said so (acqsim up --rules)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Forward:
    """Send ``payload`` (SRC already rewritten to ``return_address``) on upstream connection ``link_id``."""

    link_id: int
    group: str
    return_address: str
    payload: bytes


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Deliver:
    """Send ``payload`` (the terminal's own TPDU restored, swapped) to terminal connection ``terminal_id``."""

    terminal_id: int
    payload: bytes


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Drop:
    """Discard the frame; ``group`` names the route it was charged to, when known."""

    reason: DropReason
    group: str | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CloseTerminal:
    terminal_id: int
    reason: CloseReason


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CloseLink:
    link_id: int
    reason: CloseReason


UpDecision = Forward | Drop | CloseTerminal
DownDecision = Deliver | Drop


def framing_close_reason(exc: FramingError) -> CloseReason:
    """Which bad-length case a :class:`FramingError` from ``wire.framing`` is."""
    if exc.kind == OVERSIZED:
        return CloseReason.OVERSIZED_FRAME
    if exc.kind == TRUNCATED:
        return CloseReason.TRUNCATED_FRAME
    return CloseReason.BAD_LENGTH
