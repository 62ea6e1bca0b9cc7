"""The typed contract between the front-end and the core ledger.

The front-end speaks to the ledger only through :class:`LedgerRequest` / :class:`LedgerAnswer` (via
``core_ledger.client.LedgerClient``); ``core_ledger.hostlink`` maps them to and from ISO 8583:1987 ASCII host
link messages (PROTOCOL.md §2), so neither side repeats the field layout.

The ledger's idempotency key is (acquirer id 32, RRN 37): the RRN is the front-end's own transaction id, unique
across its restarts, so the key names the transaction itself. A repeat of a key with the same content gets the
first answer back and never posts twice; the same key with other content is refused (94). A *forced* request
(a scheme's stand-in advice) is posted even where the ledger would have declined it. A STAN reused in a new
batch (a reset terminal) comes with a new RRN, so it is a new transaction.

PIN tries are counted here, where every front-end of a pool meets: a wrong PIN is reported as a
``PIN_FAILURE`` request under the failed request's own RRN (answered 55, or 75 from the card's
``MAX_PIN_FAILURES_PER_DAY``-th failure of the business day on), and a request whose field 22 says a PIN was
entered (so verified by the front-end) is declined 75 once the card's failures that day reach the limit.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Final

from wire.constants import PIN_ENTERED, ConditionCode, Mti, ProcessingCode, ResponseCode

#: Wrong PINs a card may have in one business day: the 3rd is answered 75, and so is every PIN try after it.
MAX_PIN_FAILURES_PER_DAY: Final = 3


class LedgerOp(enum.StrEnum):
    BALANCE = "balance"
    PURCHASE = "purchase"
    PREAUTH = "preauth"
    PREAUTH_CANCEL = "preauth_cancel"
    PREAUTH_COMPLETION = "preauth_completion"
    PREAUTH_COMPLETION_VOID = "preauth_completion_void"
    VOID = "void"
    REFUND = "refund"
    TRANSFER = "transfer"
    REVERSAL = "reversal"
    #: A wrong PIN, reported so that the card's failures are counted once for the whole pool.
    PIN_FAILURE = "pin_failure"


PC = ProcessingCode
CC = ConditionCode

#: MTI / processing code (3) / condition code (25) of each operation (PROTOCOL.md §1 message set, as the host
#: link and the switch link carry it); the ledger reads the operation back from the same table.
ROUTES: Final[dict[LedgerOp, tuple[str, str, str]]] = {
    LedgerOp.BALANCE: (Mti.FINANCIAL_REQUEST, PC.BALANCE, CC.NORMAL),
    LedgerOp.PURCHASE: (Mti.FINANCIAL_REQUEST, PC.PURCHASE, CC.NORMAL),
    LedgerOp.PREAUTH: (Mti.AUTH_REQUEST, PC.PREAUTH, CC.PREAUTH),
    LedgerOp.PREAUTH_CANCEL: (Mti.AUTH_REQUEST, PC.VOID, CC.PREAUTH),
    LedgerOp.PREAUTH_COMPLETION: (Mti.FINANCIAL_REQUEST, PC.PURCHASE, CC.PREAUTH),
    LedgerOp.PREAUTH_COMPLETION_VOID: (Mti.FINANCIAL_REQUEST, PC.VOID, CC.PREAUTH),
    LedgerOp.VOID: (Mti.FINANCIAL_REQUEST, PC.VOID, CC.NORMAL),
    LedgerOp.REFUND: (Mti.ADVICE, PC.VOID, CC.NORMAL),
    LedgerOp.TRANSFER: (Mti.FINANCIAL_REQUEST, PC.TRANSFER, CC.NORMAL),
    LedgerOp.REVERSAL: (Mti.REVERSAL, PC.PURCHASE, CC.NORMAL),
    LedgerOp.PIN_FAILURE: (Mti.ADVICE, PC.PIN_FAILURE, CC.NORMAL),
}
#: Operations only the host link carries (front-end → own ledger): the switch link never names them.
HOST_LINK_ONLY_OPS: Final = frozenset({LedgerOp.PIN_FAILURE})
_OPS_BY_ROUTE: Final = {route: op for op, route in ROUTES.items() if op not in HOST_LINK_ONLY_OPS}
#: A completion advice (offline completion, 0220 000000 06) posts like a completion.
_OPS_BY_ROUTE[(Mti.ADVICE, PC.PURCHASE, CC.PREAUTH)] = LedgerOp.PREAUTH_COMPLETION
_HOST_OPS_BY_ROUTE: Final = _OPS_BY_ROUTE | {ROUTES[op]: op for op in HOST_LINK_ONLY_OPS}


def op_for_route(mti: str, processing_code: str, condition_code: str) -> LedgerOp | None:
    """The operation a request's MTI, 3 and 25 name (any 0400 is a reversal), or ``None``."""
    if mti == Mti.REVERSAL:
        return LedgerOp.REVERSAL
    return _OPS_BY_ROUTE.get((mti, processing_code, condition_code))


def host_op_for_route(mti: str, processing_code: str, condition_code: str) -> LedgerOp | None:
    """As :func:`op_for_route`, with the host link's own operations (:data:`HOST_LINK_ONLY_OPS`)."""
    return _HOST_OPS_BY_ROUTE.get((mti, processing_code, condition_code))


#: What a scheme's stand-in may approve in an issuer's place, so what the issuer's ledger must post forced.
FORCEABLE_OPS: Final = (LedgerOp.PURCHASE, LedgerOp.PREAUTH, LedgerOp.PREAUTH_COMPLETION)
_FORCED_OPS_BY_CODES: Final = {ROUTES[op][1:]: op for op in FORCEABLE_OPS}


def forced_op_for_codes(processing_code: str, condition_code: str) -> LedgerOp | None:
    """The operation a forced posting (host link 0120) names by its 3 and 25, or ``None``."""
    return _FORCED_OPS_BY_CODES.get((processing_code, condition_code))


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class OriginalRef:
    """Names an earlier transaction of the same terminal: by its RRN (host field 56) when known, else by its
    STAN, local date and time (host field 90, the fallback for clients that do not send the RRN)."""

    mti: str  # the original's host-link MTI, e.g. "0200"
    stan: str  # 6 digits
    local_date: str  # MMDD
    local_time: str  # hhmmss
    acquirer_id: str
    #: The original's RRN (field 37): the front-end's own transaction id, which identifies it at the ledger.
    rrn: str = ""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class LedgerRequest:
    op: LedgerOp
    acquirer_id: str  # 32
    terminal_id: str  # 41, 8 characters
    merchant_id: str  # 42, 15 characters
    stan: str  # 11, 6 digits
    local_time: str  # 12, hhmmss
    local_date: str  # 13, MMDD
    transmission: str  # 7, MMDDhhmmss
    pan: str  # 2
    rrn: str  # 37, 12 characters, assigned by the front-end
    amount: int = 0  # 4, minor units (0 for balance inquiry)
    currency: str = "156"  # 49
    expiry: str | None = None  # 14, YYMM
    pos_entry_mode: str | None = None  # 22
    condition_code: str = "00"  # 25
    auth_code: str | None = None  # 38: the pre-authorisation's code for cancel / completion
    original: OriginalRef | None = None  # 56 (its RRN) and 90: void, refund, cancel, completion (void), reversal
    target_pan: str | None = None  # 48: transfer target
    #: A posting the scheme already guaranteed in the issuer's place (a stand-in advice): posted whatever the
    #: balance, limits or card status say, exactly once under the original's key (host link MTI 0120).
    forced: bool = False

    @property
    def pin_entered(self) -> bool:
        """Field 22 says the cardholder entered a PIN, which the front-end verified before asking."""
        return (self.pos_entry_mode or "")[-1:] == PIN_ENTERED

    @property
    def key(self) -> tuple[str, str]:
        """The idempotency key (32, 37): the acquirer and the front-end's transaction id."""
        return (self.acquirer_id, self.rrn)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class LedgerAnswer:
    response_code: ResponseCode  # 39
    rrn: str  # 37, echoed
    auth_code: str | None = None  # 38, on approvals that authorise
    balance: int | None = None  # 54 ledger balance, minor units (balance inquiry, and on approvals)
    available: int | None = None  # 54 available balance (balance − holds)
    currency: str = "156"

    @property
    def approved(self) -> bool:
        return self.response_code is ResponseCode.APPROVED
