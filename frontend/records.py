"""What the journal keeps, as plain data: a terminal's session and a journaled transaction.

The core reads and writes these through journal effects (:mod:`frontend.effects`); only the journal
(:mod:`frontend.journal`) knows how they are stored.
"""

from __future__ import annotations

import dataclasses
from typing import Final

#: Batch numbers are 60.2, n6: after 999999 comes 000001.
BATCH_MODULUS: Final = 999_999
#: The batch of a terminal's first sign-on.
FIRST_BATCH: Final = "000001"


def next_batch_number(batch: str) -> str:
    """The batch after ``batch``: settlement closes a batch, and each sign-on starts the next."""
    return f"{int(batch) % BATCH_MODULUS + 1:06d}"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Session:
    terminal_id: str
    pik: str  # under LMK
    mak: str  # under LMK
    batch: str
    #: The track data key under the LMK, from a 004 sign-on (PROTOCOL.md §8); ``None`` after a 003 sign-on.
    tdk: str | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class JournalTxn:
    terminal_id: str
    batch: str
    stan: str
    mti: str
    kind: str
    amount: int
    local_date: str
    local_time: str
    rrn: str
    auth_code: str | None
    response_code: str | None
    status: str
