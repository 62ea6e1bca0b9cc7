"""When the outcome at the ledger is not known: which ledger answers leave it unknown, what a fault of the
front-end's own costs a request, and what each ledger answer to a store-and-forward reversal means."""

from __future__ import annotations

import enum
from typing import Final

from core_ledger.api import LedgerOp, LedgerRequest
from wire.constants import ResponseCode

#: Ledger answers after which a posting may or may not have landed (its commit failed or was cut short); to a
#: store-and-forward reversal, the answers worth trying again (any other refusal is final: a dead letter).
UNKNOWN_OUTCOME_CODES: Final = frozenset({ResponseCode.SYSTEM_MALFUNCTION, ResponseCode.CORE_TIMEOUT})


class FaultPlan(enum.Enum):
    """What the shell does with a request whose flow failed inside the front-end."""

    ANSWER_96 = "answer 96: nothing reached the ledger"
    NO_ANSWER = "no answer: the ledger may have posted, the terminal's reversal settles it"
    REVERSE_AND_ANSWER_96 = "queue a reversal of what the ledger was asked (it may have posted), answer 96"


def plan_for_fault(asked: LedgerRequest | None, *, journal_failed: bool) -> FaultPlan:
    """A failed journal after the ledger was asked gets no answer (a 96 would tell the terminal nothing
    happened; the terminal reverses, as after any lost answer, and the reversal finds the journaled request
    once the journal is back). Any other fault after the ledger was asked to post queues a reversal (never
    guess). Before the ledger was asked, 96."""
    if asked is None:
        return FaultPlan.ANSWER_96
    if journal_failed:
        return FaultPlan.NO_ANSWER
    if asked.op in (LedgerOp.REVERSAL, LedgerOp.PIN_FAILURE):  # nothing posted that a reversal could undo
        return FaultPlan.ANSWER_96
    return FaultPlan.REVERSE_AND_ANSWER_96


class ForwardVerdict(enum.Enum):
    """What a ledger answer to a store-and-forward reversal means for the queued reversal."""

    DONE = "undone at the ledger (or never posted: the ledger tombstones it)"
    TRY_AGAIN = "the ledger's own failure: counts a try, a dead letter after the last"
    DEAD = "refused for good (12: its original changed since): an operator must settle it"


def forward_verdict(code: ResponseCode) -> ForwardVerdict:
    """Only 00 means undone; the unknown-outcome codes may succeed when tried again; any other is final."""
    if code is ResponseCode.APPROVED:
        return ForwardVerdict.DONE
    if code in UNKNOWN_OUTCOME_CODES:
        return ForwardVerdict.TRY_AGAIN
    return ForwardVerdict.DEAD
