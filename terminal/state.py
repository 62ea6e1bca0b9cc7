"""A terminal's persisted state: one JSON file per terminal, written atomically (temp file + rename).

Working keys are kept as received in field 62 — encrypted under the TMK — never in clear; the clear keys
exist only in memory while a command runs. The batch keeps what settlement and batch upload need.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Final

from acqkit.datakey import DataKey

MAX_STAN: Final = 999_999
#: How many times a reversal is sent before it is kept for settlement (PROTOCOL.md §1).
MAX_REVERSAL_TRIES: Final = 3


@dataclasses.dataclass(slots=True, kw_only=True)
class BatchTxn:
    kind: str
    stan: str
    pan: str
    amount: int
    rrn: str = ""
    auth_code: str = ""
    local_date: str = ""
    voided: bool = False
    voucher: str = ""  # QR payments: the voucher number (59 A4) that void and refund quote
    #: Chip transactions: entry mode, PAN sequence number and the request's field 55 (hex), for the chip
    #: batch upload.
    entry: str = ""
    psn: str = ""
    icc: str = ""


@dataclasses.dataclass(slots=True, kw_only=True)
class PendingReversal:
    fields: dict[str, str]  # the 0400's fields without 64 (re-MACed at each try)
    tries: int = 0


@dataclasses.dataclass(slots=True, kw_only=True)
class TerminalState:
    terminal_id: str
    merchant_id: str
    stan: int = 0
    batch: str = "000001"
    pik_under_tmk: str | None = None
    mak_under_tmk: str | None = None
    tdk_under_tmk: str | None = None  # track data key, from a 004 sign-on (PROTOCOL.md §8)
    signed_on: bool = False
    pending_reversal: PendingReversal | None = None
    kept_reversals: list[dict[str, str]] = dataclasses.field(default_factory=list)
    batch_txns: list[BatchTxn] = dataclasses.field(default_factory=list)
    #: The last ATC each chip card used at this terminal (the simulated cards' counters live here, so a card
    #: never repeats an ATC across runs). Keyed by PAN: sealed with the other card data.
    card_atcs: dict[str, int] = dataclasses.field(default_factory=dict)
    #: 0620 script-result advices not yet acknowledged (fields without 64, re-MACed at each try), oldest first:
    #: stored before the first try and sent again before the next request until the host answers each.
    pending_advices: list[dict[str, str]] = dataclasses.field(default_factory=list)
    #: MPOS: the last DUKPT counter the terminal's card reader used (never used again).
    reader_counter: int = 0

    def next_stan(self) -> str:
        self.stan = self.stan % MAX_STAN + 1
        return f"{self.stan:06d}"

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> TerminalState:
        pending = raw.pop("pending_reversal", None)
        txns = raw.pop("batch_txns", [])
        state = cls(**raw)
        state.pending_reversal = PendingReversal(**pending) if pending else None
        state.batch_txns = [BatchTxn(**t) for t in txns]
        return state


#: The parts of the state that hold card data, sealed together in the file.
SEALED_PARTS: Final = ("pending_reversal", "kept_reversals", "batch_txns", "card_atcs", "pending_advices")
STORAGE_KEY_LABEL: Final = b"acqsim terminal state v1"


def storage_key(tmk: bytes) -> DataKey:
    """The key that seals a terminal's stored card data, derived from its TMK (never the TMK itself)."""
    return DataKey(hmac.new(tmk, STORAGE_KEY_LABEL, hashlib.sha256).digest())


def state_path(state_dir: Path, terminal_id: str) -> Path:
    return state_dir / f"terminal-{terminal_id}.json"


def load_state(state_dir: Path, terminal_id: str, merchant_id: str, *, key: DataKey) -> TerminalState:
    path = state_path(state_dir, terminal_id)
    if not path.exists():
        return TerminalState(terminal_id=terminal_id, merchant_id=merchant_id)
    raw = json.loads(path.read_text())
    sealed = raw.pop("sealed", None)
    if sealed is not None:  # (a file written before sealing holds the parts in clear)
        raw.update(json.loads(key.open(sealed)))
    return TerminalState.from_json(raw)


def save_state(state_dir: Path, state: TerminalState, *, key: DataKey) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_path(state_dir, state.terminal_id)
    raw = state.to_json()
    raw["sealed"] = key.seal(json.dumps({part: raw.pop(part) for part in SEALED_PARTS}))
    fd, tmp = tempfile.mkstemp(dir=state_dir, prefix=".terminal-", suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        json.dump(raw, handle, indent=1)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
