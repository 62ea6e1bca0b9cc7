"""Start-up recovery: settle every row a crash left pending before the front-end takes traffic.

A row is pending between "journaled, about to ask the ledger" and "the ledger's answer journaled". Answers go
to the terminal only after they are journaled, so a row still pending at start-up is one whose terminal never
heard an answer: the terminal will (or did) reverse it, and the ledger may or may not have posted it. The
settlement is therefore always a reversal — idempotent at the ledger, which undoes a posting or leaves a
tombstone so that a late original is refused — never a guess. Each is tried once against the ledger (under
``RECOVERY_TRY_TIMEOUT_S``); one the ledger does not take now goes to the store-and-forward queue, and once
the ledger has failed to answer, so do all the rest (a start-up never waits on a dead ledger row by row). Either way
the row is journaled reversed and forgets its card number.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any, Final

import anyio

from acqkit.groupcommit import GroupCommit
from core_ledger.api import LedgerRequest
from core_ledger.client import LedgerClient, LedgerTimeout, LedgerUnavailable
from frontend.flows.ledger import reversal_of
from frontend.journal import Journal
from frontend.lifecycle import TxnEvent, TxnState, advance
from frontend.records import JournalTxn
from frontend.routing import Route, SchemeRoute, route_of
from wire.constants import ResponseCode

log = logging.getLogger("acqsim.frontend")

#: How long recovery waits for the ledger's answer to one reversal before queueing it instead.
RECOVERY_TRY_TIMEOUT_S: Final = 5.0


@dataclasses.dataclass(slots=True)
class RecoveryReport:
    reversed_at_ledger: int = 0
    queued: int = 0
    without_request: int = 0  # rows written by an older acqsim: left pending, logged

    @property
    def settled(self) -> int:
        return self.reversed_at_ledger + self.queued


def _journal_reversed(row: JournalTxn, reversal: LedgerRequest | None) -> Callable[[Journal], None]:
    """One journal call: queue ``reversal`` (if the ledger has not taken it yet) and mark the row reversed."""
    status = advance(TxnState.PENDING, TxnEvent.OUTCOME_UNKNOWN)

    def write(journal: Journal) -> None:
        if reversal is not None:
            journal.queue_reversal(reversal)
        journal.record_answer(
            row.terminal_id,
            row.batch,
            row.stan,
            row.mti,
            response_code=ResponseCode.CORE_TIMEOUT.value,  # what its terminal saw: no answer in time
            auth_code=None,
            status=status,
        )

    return write


async def settle_unsettled(
    journal: Journal,
    journal_writes: GroupCommit[Callable[[Journal], Any], Any],
    ledger: LedgerClient,
    *,
    route: SchemeRoute | None = None,
) -> RecoveryReport:
    """Reverse every row of ``journal`` a crash left pending (writes through ``journal_writes``, the front-end's
    group commit, whose flusher must be running), before the front-end takes traffic. An off-us row (``route``)
    is not tried at the ledger: its reversal is queued for the store-and-forward, which takes it to the switch."""
    report = RecoveryReport()
    ledger_answers = True
    for row, request in await anyio.to_thread.run_sync(journal.unsettled):
        if request is None:
            report.without_request += 1
            log.warning(
                "pending row terminal %s STAN %s has no ledger request: settle it by hand", row.terminal_id, row.stan
            )
            continue
        rrn: str = await journal_writes.submit(lambda j: j.next_rrn())
        reversal = reversal_of(request, row.mti, rrn)
        done = False
        on_us = route_of(route, request.pan) is Route.ON_US
        if ledger_answers and on_us:  # once the ledger failed to answer, the rest go straight to the queue
            try:
                with anyio.fail_after(RECOVERY_TRY_TIMEOUT_S):
                    answer = await ledger.submit(reversal)
                done = answer.response_code is ResponseCode.APPROVED
            except (LedgerTimeout, LedgerUnavailable, TimeoutError):
                ledger_answers = False
        await journal_writes.submit(_journal_reversed(row, None if done else reversal))
        if done:
            report.reversed_at_ledger += 1
        else:
            report.queued += 1
    if report.settled or report.without_request:
        log.warning(
            "recovery: of the rows a crash left pending, %d reversed at the ledger, %d queued, %d left for an operator",
            report.reversed_at_ledger,
            report.queued,
            report.without_request,
        )
    return report
