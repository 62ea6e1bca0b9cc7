"""What the front-end core asks its shell to do. Each effect is answered by the value the shell sends back.

The core is a generator per transaction: it ``yield``s an effect, the shell carries it out (HSM, ledger,
journal, each under its own timeout) and sends the result back in. Tests drive the same generators with
results they choose, so every rule is testable without a network.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable
from typing import Any

from core_ledger.api import LedgerRequest


@dataclasses.dataclass(frozen=True, slots=True)
class GenerateWorkingKeys:
    """→ ``(pik, mak)`` as ``hsm_sim.client.GeneratedKey`` (A0 mode 1 under the TMK)."""

    tmk_under_lmk: str


@dataclasses.dataclass(frozen=True, slots=True)
class VerifyMac:
    """→ ``bool`` (M8, CUP ECB algorithm)."""

    mak_under_lmk: str
    data: bytes
    mac: bytes


@dataclasses.dataclass(frozen=True, slots=True)
class GenerateMac:
    """→ ``bytes`` (M6, CUP ECB algorithm)."""

    mak_under_lmk: str
    data: bytes


@dataclasses.dataclass(frozen=True, slots=True)
class VerifyPin:
    """→ ``hsm_sim.client.PinVerification`` (DC, Visa PVV)."""

    tpk_under_lmk: str
    pvk_under_lmk: str
    pin_block: bytes
    pan: str
    pvki: str
    pvv: str


@dataclasses.dataclass(frozen=True, slots=True)
class VerifyMacAndPin:
    """→ ``(bool | PeerFailure, PinVerification | PeerFailure)``: both commands sent to the HSM together (one
    write, one round trip), as payShield clients pipeline commands on one connection."""

    mac: VerifyMac
    pin: VerifyPin


@dataclasses.dataclass(frozen=True, slots=True)
class AskLedger:
    """→ ``LedgerAnswer`` or :class:`PeerFailure`."""

    request: LedgerRequest


@dataclasses.dataclass(frozen=True, slots=True)
class JournalCall:
    """→ whatever ``call(journal)`` returns: run in a worker thread, durable (group commit) when it returns."""

    call: Callable[[Any], Any]


@dataclasses.dataclass(frozen=True, slots=True)
class JournalRead:
    """→ whatever ``call(journal)`` returns: a read the journal answers from memory, run inline (no thread)."""

    call: Callable[[Any], Any]


@dataclasses.dataclass(frozen=True, slots=True)
class QueueReversal:
    """Store a reversal for the ledger (store-and-forward) and wake the forwarder. → ``None``."""

    request: LedgerRequest


Effect = (
    GenerateWorkingKeys
    | VerifyMac
    | GenerateMac
    | VerifyPin
    | VerifyMacAndPin
    | AskLedger
    | JournalCall
    | JournalRead
    | QueueReversal
)


class FailureKind(enum.Enum):
    TIMEOUT = "timeout"
    UNAVAILABLE = "unavailable"
    ERROR = "error"


@dataclasses.dataclass(frozen=True, slots=True)
class PeerFailure:
    """The HSM or the ledger did not give a usable answer."""

    peer: str
    kind: FailureKind
    detail: str = ""
