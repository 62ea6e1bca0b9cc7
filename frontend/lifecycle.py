"""A front-end transaction's life, as one table: (state, event) → next state. Anything else is illegal.

    pending  ──ledger approved──▶ approved ──voided──▶ voided
       │     ──ledger declined──▶ declined               (a void, cancel or completion void approved)
       │     ──PIN rejected─────▶ declined
       ├─────outcome unknown────▶ reversed   (no answer, or a ledger 96: a reversal is queued for the ledger)
       └─────reversed───────────▶ reversed   (the terminal gave up before the ledger answered)
    approved ──reversed─────────▶ reversed   (a terminal's 0400, acknowledged)
    reversed ──reversed─────────▶ reversed   (reversals are idempotent)
    declined ──reversed─────────▶ declined   (nothing was posted: nothing to undo)

The journal stores the state; the core moves it only through :func:`advance`.
"""

from __future__ import annotations

import enum
from typing import Final


class TxnState(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DECLINED = "declined"
    REVERSED = "reversed"
    VOIDED = "voided"


class TxnEvent(enum.StrEnum):
    LEDGER_APPROVED = "ledger approved"
    LEDGER_DECLINED = "ledger declined"
    PIN_REJECTED = "PIN rejected"
    OUTCOME_UNKNOWN = "outcome unknown"  # no answer in time, or a ledger 96: it may have posted
    VOIDED = "voided"
    REVERSED = "reversed"


S, E = TxnState, TxnEvent
TRANSITIONS: Final[dict[tuple[TxnState, TxnEvent], TxnState]] = {
    (S.PENDING, E.LEDGER_APPROVED): S.APPROVED,
    (S.PENDING, E.LEDGER_DECLINED): S.DECLINED,
    (S.PENDING, E.PIN_REJECTED): S.DECLINED,
    (S.PENDING, E.OUTCOME_UNKNOWN): S.REVERSED,
    (S.PENDING, E.REVERSED): S.REVERSED,
    (S.APPROVED, E.VOIDED): S.VOIDED,
    (S.APPROVED, E.REVERSED): S.REVERSED,
    (S.REVERSED, E.REVERSED): S.REVERSED,
    (S.DECLINED, E.REVERSED): S.DECLINED,
}


class IllegalTransition(Exception):
    def __init__(self, state: str, event: TxnEvent) -> None:
        super().__init__(f"a {state} transaction cannot be {event}")
        self.state = state
        self.event = event


def advance(state: str, event: TxnEvent) -> TxnState:
    try:
        return TRANSITIONS[(TxnState(state), event)]
    except (KeyError, ValueError):
        raise IllegalTransition(state, event) from None


def can(state: str, event: TxnEvent) -> bool:
    try:
        return (TxnState(state), event) in TRANSITIONS
    except ValueError:
        return False
