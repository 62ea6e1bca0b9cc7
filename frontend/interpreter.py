"""The shell's effect interpreter: carries out each effect of :mod:`frontend.effects` — HSM commands through
the HSM client, ledger requests through the ledger client, journal effects inline (memory reads) or through
the group commit (durable writes) — and turns a peer's failure into a :class:`~frontend.effects.PeerFailure`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from acqkit.groupcommit import GroupCommit
from acqkit.metrics import HOP_SECONDS
from core_ledger.client import LedgerClient, LedgerTimeout, LedgerUnavailable
from frontend.effects import (
    HSM_EFFECTS,
    INLINE_JOURNAL_EFFECTS,
    AskLedger,
    Effect,
    FailureKind,
    PeerFailure,
    QueueReversal,
    VerifyMacAndPin,
)
from frontend.hsm_effects import hsm_commands, hsm_result
from frontend.journal import Journal
from frontend.journal_ops import JournalCall, journal_call
from frontend.tracing import TRACED, EffectTrace
from hsm_sim.client import HsmClient, HsmError, HsmUnavailable
from wire.trace import TraceWriter

log = logging.getLogger("acqsim.frontend")


class Interpreter:
    def __init__(
        self,
        journal: Journal,
        hsm: HsmClient,
        ledger: LedgerClient,
        *,
        trace: TraceWriter | None,
        reversal_queued: Callable[[], None],
    ) -> None:
        self.journal, self.hsm, self.ledger, self.trace = journal, hsm, ledger, trace
        #: Journal writes of all transactions in flight share one commit (``serve`` runs its flusher).
        self.journal_writes: GroupCommit[JournalCall, Any] = GroupCommit("journal", journal.run_batch)
        self._reversal_queued = reversal_queued

    async def carry_out(self, effect: Effect, correlation: str | None = None) -> Any:
        traced = (
            EffectTrace(self.trace, effect, correlation)
            if self.trace is not None and isinstance(effect, TRACED)
            else None
        )
        result = await self._carry_out(effect, correlation)
        if isinstance(effect, VerifyMacAndPin) and isinstance(result, PeerFailure):
            result = (result, result)  # the HSM failed both checks
        if traced is not None:
            traced.answered(result)
        return result

    async def _carry_out(self, effect: Effect, correlation: str | None) -> Any:
        if isinstance(effect, INLINE_JOURNAL_EFFECTS):
            return journal_call(effect)(self.journal)
        try:
            if isinstance(effect, HSM_EFFECTS):
                with HOP_SECONDS.labels(service="frontend", hop="hsm").time():
                    answers = await self.hsm.call_many(hsm_commands(effect), txn=correlation)
                return hsm_result(effect, answers)
            if isinstance(effect, AskLedger):
                with HOP_SECONDS.labels(service="frontend", hop="ledger").time():
                    return await self.ledger.submit(effect.request)
        except LedgerTimeout as exc:
            log.warning("ledger timed out: %s", exc)
            return PeerFailure("ledger", FailureKind.TIMEOUT, str(exc))
        except LedgerUnavailable as exc:
            log.warning("ledger unavailable: %s", exc)
            return PeerFailure("ledger", FailureKind.UNAVAILABLE, str(exc))
        except HsmUnavailable as exc:
            log.warning("HSM unavailable: %s", exc)
            return PeerFailure("hsm", FailureKind.UNAVAILABLE, str(exc))
        except HsmError as exc:
            log.warning("HSM error: %s", exc)
            return PeerFailure("hsm", FailureKind.ERROR, str(exc))
        result = await self.journal_writes.submit(journal_call(effect))
        if isinstance(effect, QueueReversal):
            self._reversal_queued()
        return result
