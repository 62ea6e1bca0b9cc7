"""What the front-end core asks its shell to do, as plain data. Each effect is answered by the value the shell
sends back.

The core is a generator per transaction: it ``yield``s an effect, the shell carries it out (HSM, ledger,
journal, each under its own timeout: :mod:`frontend.interpreter`) and sends the result back in. Effects are
frozen dataclasses compared by value, so a core test can assert the exact sequence a transaction yields.
Card numbers in effects are left out of their ``repr``.

HSM effects: :class:`GenerateWorkingKeys`, :class:`VerifyMac`, :class:`GenerateMac`, :class:`VerifyPin`,
:class:`VerifyMacAndPin`. Ledger: :class:`AskLedger`; the scheme switch (off-us cards): :class:`AskScheme`; the
wallet host (QR payments): :class:`AskWallet`. Journal: every other effect; those in
:data:`INLINE_JOURNAL_EFFECTS` are answered from the journal's memory (no thread, no disk), the rest are written
durably (group commit) before their answer comes back. :class:`Together`: effects carried out at once.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Final

from core_ledger.api import LedgerRequest
from frontend.records import Session
from hsm_sim.client import ArqcCheck
from wire.tlvlink import LinkMessage

# --- HSM -------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class GenerateWorkingKeys:
    """→ ``(pik, mak)`` — and with ``with_tdk`` ``(pik, mak, tdk)`` — as ``hsm_sim.client.GeneratedKey`` (A0
    mode 1 under the TMK)."""

    tmk_under_lmk: str
    with_tdk: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class VerifyMac:
    """→ ``bool`` (M8, CUP ECB algorithm)."""

    mak_under_lmk: str
    data: bytes = dataclasses.field(repr=False)  # the request body: it holds the card number
    mac: bytes = dataclasses.field(repr=False)


@dataclasses.dataclass(frozen=True, slots=True)
class GenerateMac:
    """→ ``bytes`` (M6, CUP ECB algorithm)."""

    mak_under_lmk: str
    data: bytes = dataclasses.field(repr=False)  # the answer body: it holds the card number


@dataclasses.dataclass(frozen=True, slots=True)
class VerifyPin:
    """→ ``hsm_sim.client.PinVerification`` (DC, Visa PVV)."""

    tpk_under_lmk: str
    pvk_under_lmk: str
    pin_block: bytes = dataclasses.field(repr=False)
    pan: str = dataclasses.field(repr=False)
    pvki: str = dataclasses.field(repr=False)
    pvv: str = dataclasses.field(repr=False)
    #: MPOS: the PIN block is under the DUKPT PIN key of this KSN, and ``tpk_under_lmk`` is then the BDK
    #: (GQ instead of DC).
    ksn: bytes | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class VerifyArqc:
    """→ the ARPC for ``check.arc`` (``bytes``) when the card's ARQC verifies under its key from the IMK-AC,
    ``None`` when it does not, or :class:`PeerFailure` (KQ mode 1: the approval's ARPC comes in the same round
    trip)."""

    check: ArqcCheck


@dataclasses.dataclass(frozen=True, slots=True)
class GenerateArpc:
    """→ the 8-byte ARPC (method 1) for ``check.arc``, or :class:`PeerFailure` (KQ mode 2)."""

    check: ArqcCheck


@dataclasses.dataclass(frozen=True, slots=True)
class DecryptTrack:
    """→ the clear track data (``bytes``) or :class:`PeerFailure` (M2 under the DUKPT data key of ``ksn``)."""

    bdk_under_lmk: str
    ksn: bytes
    ciphertext: bytes = dataclasses.field(repr=False)


@dataclasses.dataclass(frozen=True, slots=True)
class DecryptTrackBlock:
    """→ the clear 8-byte block (``bytes``) or :class:`PeerFailure` (M2 kind D: the encrypted block of a track
    under the terminal session's TDK, TDES-ECB; PROTOCOL.md §8)."""

    tdk_under_lmk: str
    block: bytes = dataclasses.field(repr=False)


@dataclasses.dataclass(frozen=True, slots=True)
class VerifyMacAndPin:
    """→ ``(bool | PeerFailure, PinVerification | PeerFailure)``: both commands sent to the HSM together (one
    write, one round trip), as payShield clients pipeline commands on one connection."""

    mac: VerifyMac
    pin: VerifyPin


# --- ledger ----------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class AskLedger:
    """→ ``LedgerAnswer`` or :class:`PeerFailure`."""

    request: LedgerRequest = dataclasses.field(repr=False)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class AskScheme:
    """An off-us request to the scheme switch (:mod:`frontend.routing`). With a PIN block, the shell first has the
    HSM translate it from the terminal's TPK to the acquirer zone's ZPK (CA). → ``LedgerAnswer`` (the switch's
    answer: its 39 and 38, the request's RRN) or :class:`PeerFailure`."""

    request: LedgerRequest = dataclasses.field(repr=False)
    tpk_under_lmk: str = ""
    zpk_under_lmk: str = dataclasses.field(default="", repr=False)
    pin_block: bytes | None = dataclasses.field(default=None, repr=False)
    track2: str | None = dataclasses.field(default=None, repr=False)
    mcc: str = ""


# --- wallet host (QR payments) --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class AskWallet:
    """→ the wallet host's answer (a wire.tlvlink ``LinkMessage``) or :class:`PeerFailure`. The request may
    hold a payment code: left out of the ``repr``."""

    request: LinkMessage = dataclasses.field(repr=False)


# --- journal: sessions -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class LoadSession:
    """→ the terminal's :class:`~frontend.records.Session`, or ``None`` (inline, from memory)."""

    terminal_id: str


@dataclasses.dataclass(frozen=True, slots=True)
class OpenSession:
    """A sign-on: the terminal's next batch number, saved with its new working keys. → the batch (``str``)."""

    terminal_id: str
    pik_under_lmk: str
    mak_under_lmk: str
    tdk_under_lmk: str | None = None  # a 004 sign-on's track data key


@dataclasses.dataclass(frozen=True, slots=True)
class SaveSession:
    """→ ``None``."""

    session: Session


@dataclasses.dataclass(frozen=True, slots=True)
class DropSession:
    """A sign-off. → ``None``."""

    terminal_id: str


# --- journal: transactions -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class NextRrn:
    """→ a fresh RRN (``str``)."""


@dataclasses.dataclass(frozen=True, slots=True)
class FindTxn:
    """→ the first journaled :class:`~frontend.records.JournalTxn` with this key, or ``None``."""

    terminal_id: str
    batch: str
    stan: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RecordRequest:
    """Journal a request before the ledger is asked, with ``ledger_request`` (given the next RRN there). → the
    numbered ``LedgerRequest``, or ``None`` when (terminal, batch, STAN, MTI) is already journaled."""

    terminal_id: str
    batch: str
    stan: str
    mti: str
    kind: str
    pan_masked: str
    amount: int
    local_date: str
    local_time: str
    original_stan: str | None
    ledger_request: LedgerRequest = dataclasses.field(repr=False)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RecordQrRequest:
    """Journal a QR request before the wallet is asked. → its RRN, or ``None`` when (terminal, batch, STAN,
    MTI) is already journaled."""

    terminal_id: str
    batch: str
    stan: str
    mti: str
    kind: str
    code_masked: str
    amount: int
    local_date: str
    local_time: str
    original_stan: str | None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RecordAnswer:
    """The answer of a journaled request, and its new state. → ``None``."""

    terminal_id: str
    batch: str
    stan: str
    mti: str
    response_code: str
    auth_code: str | None
    status: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SetStatus:
    """Move a journaled transaction to ``status`` (voided, reversed). → ``None``."""

    terminal_id: str
    batch: str
    stan: str
    mti: str
    status: str


@dataclasses.dataclass(frozen=True, slots=True)
class BatchTotals:
    """→ the ``wire.fields.SettlementTotals`` of the batch, as the journal counts them."""

    terminal_id: str
    batch: str


@dataclasses.dataclass(frozen=True, slots=True)
class QueueReversal:
    """Store a reversal for the ledger (store-and-forward) and wake the forwarder. → ``None``."""

    request: LedgerRequest = dataclasses.field(repr=False)


@dataclasses.dataclass(frozen=True, slots=True)
class QueueWalletReversal:
    """Store a wallet-link reversal (``REVS``) for the wallet host (store-and-forward) and wake the forwarder.
    → ``None``."""

    request: LinkMessage


@dataclasses.dataclass(frozen=True, slots=True)
class QueueSettlementNotice:
    """The batch closes: queue its "settlement done" notice (totals by method, :mod:`frontend.notices`) for the
    merchant platform (store-and-forward) and wake the forwarder. → ``None``. Carried out only when the
    front-end has a merchant platform to tell."""

    terminal_id: str
    merchant_id: str
    batch: str


# --- journal: counters that must never repeat (a chip card's ATC, a DUKPT reader's KSN counter) -----------


class CounterVerdict(enum.Enum):
    FRESH = "fresh"  # never seen: now recorded
    REPEATED = "repeated"  # seen before (a replay)
    TOO_OLD = "too old"  # further behind the highest seen than the window remembers


@dataclasses.dataclass(frozen=True, slots=True)
class UseCounter:
    """Record ``value`` for (``scope``, ``owner``) unless it was seen before or is too far behind the highest
    seen (``window`` values remembered below it). → :class:`CounterVerdict`. ``owner`` (a card number, a
    reader's KSN) is kept only as the journal's keyed fingerprint."""

    scope: str
    owner: str = dataclasses.field(repr=False)
    value: int
    window: int


# --- journal: PIN tries ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class ReservePinTry:
    """Take one of the card's ``limit`` tries today for a DC about to go to the HSM (inline: the check and the
    take are one step on the event loop). → ``bool``, whether a try was left."""

    pan: str = dataclasses.field(repr=False)
    day: str
    limit: int


@dataclasses.dataclass(frozen=True, slots=True)
class ReleasePinTry:
    """Give back a reserved try: the PIN was right, or was not verified (inline). → ``None``."""

    pan: str = dataclasses.field(repr=False)
    day: str


@dataclasses.dataclass(frozen=True, slots=True)
class AddPinFailure:
    """Turn a reserved try into a wrong PIN seen by this instance (inline, memory only: the card's ledger
    counts it for the pool). → this instance's failures of the card today (``int``)."""

    pan: str = dataclasses.field(repr=False)
    day: str


HsmEffect = (
    GenerateWorkingKeys
    | VerifyMac
    | GenerateMac
    | VerifyPin
    | VerifyMacAndPin
    | VerifyArqc
    | GenerateArpc
    | DecryptTrack
    | DecryptTrackBlock
)
JournalEffect = (
    LoadSession
    | OpenSession
    | SaveSession
    | DropSession
    | NextRrn
    | FindTxn
    | RecordRequest
    | RecordQrRequest
    | RecordAnswer
    | SetStatus
    | BatchTotals
    | QueueReversal
    | QueueWalletReversal
    | QueueSettlementNotice
    | ReservePinTry
    | ReleasePinTry
    | AddPinFailure
    | UseCounter
)


@dataclasses.dataclass(frozen=True, slots=True)
class Together:
    """Journal writes made durable while HSM commands run (the answer's record and its MAC): → a tuple of their
    results, in order, once every one has ended. The writes are queued for the next group commit first, the HSM
    commands then carried out one after another, then the writes waited for; a write that fails raises then,
    the first in order, as if each had been carried out alone. Only durable writes without a follow-up (no
    queued reversal or notice) and HSM effects belong here."""

    effects: tuple[HsmEffect | JournalEffect, ...]

    def __post_init__(self) -> None:
        for effect in self.effects:
            if isinstance(effect, (*INLINE_JOURNAL_EFFECTS, *QUEUEING_EFFECTS)):
                raise TypeError(f"{type(effect).__name__} is not carried out together with others")


Effect = HsmEffect | AskLedger | AskScheme | AskWallet | JournalEffect | Together

#: Journal effects answered from memory on the event loop (no thread, no disk).
INLINE_JOURNAL_EFFECTS: Final = (LoadSession, ReservePinTry, ReleasePinTry, AddPinFailure)
InlineJournalEffect = LoadSession | ReservePinTry | ReleasePinTry | AddPinFailure
#: Journal writes the shell follows up (a forwarder told, or nothing written without a merchant platform).
QUEUEING_EFFECTS: Final = (QueueReversal, QueueWalletReversal, QueueSettlementNotice)
HSM_EFFECTS: Final = (
    GenerateWorkingKeys,
    VerifyMac,
    GenerateMac,
    VerifyPin,
    VerifyMacAndPin,
    VerifyArqc,
    GenerateArpc,
    DecryptTrack,
    DecryptTrackBlock,
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
