"""The shell's effect interpreter: carries out each effect of :mod:`frontend.effects` — HSM commands through
the HSM client, ledger requests through the ledger client, journal effects inline (memory reads) or through
the group commit (durable writes) — and turns a peer's failure into a :class:`~frontend.effects.PeerFailure`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from time import perf_counter
from typing import Any

from acqkit.groupcommit import GroupCommit
from acqkit.metrics import HOP_SECONDS
from core_ledger.api import LedgerAnswer
from core_ledger.client import LedgerClient, LedgerTimeout, LedgerUnavailable
from frontend.effects import (
    HSM_EFFECTS,
    INLINE_JOURNAL_EFFECTS,
    QUEUEING_EFFECTS,
    AskLedger,
    AskScheme,
    AskWallet,
    Effect,
    FailureKind,
    InlineJournalEffect,
    PeerFailure,
    QueueSettlementNotice,
    Together,
    VerifyMacAndPin,
)
from frontend.hsm_effects import hsm_commands, hsm_result
from frontend.journal import Journal
from frontend.journal_ops import JournalCall, journal_call
from frontend.tracing import TRACED, EffectTrace, SchemeTrace
from hsm_sim.client import HsmClient, HsmError, HsmUnavailable
from scheme.client import SwitchLinkClient, SwitchLinkError, SwitchTimeout, ledger_answer, switch_request
from wallet.client import WalletClient, WalletTimeout, WalletUnavailable
from wire.constants import ResponseCode
from wire.switchlink import SwitchHeader
from wire.trace import TraceWriter

log = logging.getLogger("acqsim.frontend")
#: The front-end's hop timers, looked up once (``labels`` takes a lock and builds a key on every call).
_HSM_HOP, _LEDGER_HOP, _SCHEME_HOP = (
    HOP_SECONDS.labels(service="frontend", hop=hop) for hop in ("hsm", "ledger", "scheme")
)


class Interpreter:
    def __init__(
        self,
        journal: Journal,
        hsm: HsmClient,
        ledger: LedgerClient,
        *,
        trace: TraceWriter | None,
        reversal_queued: Callable[[], None],
        wallet: WalletClient | None = None,
        scheme: SwitchLinkClient | None = None,
        notices: bool = False,
    ) -> None:
        self.journal, self.hsm, self.ledger, self.trace = journal, hsm, ledger, trace
        #: Whether a merchant platform takes the settlement notices (without one, none is queued).
        self.notices = notices
        #: The wallet host, for QR payments (``None``: QR requests are answered as the wallet unavailable).
        self.wallet = wallet
        self.scheme = scheme
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

    def answer_inline(self, effect: InlineJournalEffect) -> Any:
        """The answer of one of :data:`~frontend.effects.INLINE_JOURNAL_EFFECTS`, from the journal's memory: no
        wait, so the shell takes it without a coroutine (four a PIN purchase)."""
        return journal_call(effect)(self.journal)

    async def _together(self, effect: Together, correlation: str | None) -> tuple[Any, ...]:
        """The journal writes of ``effect`` queued for the next group commit (no task, no wait), its HSM effects
        carried out meanwhile, then the writes waited for: every result in order, or the first failed write."""
        results: list[Any] = [None] * len(effect.effects)
        writes = {
            index: self.journal_writes.enqueue(journal_call(each))
            for index, each in enumerate(effect.effects)
            if not isinstance(each, HSM_EFFECTS)
        }
        for index, each in enumerate(effect.effects):
            if index not in writes:
                results[index] = await self.carry_out(each, correlation)
        for index, ticket in writes.items():
            results[index] = await self.journal_writes.wait(ticket)
        return tuple(results)

    async def _carry_out(self, effect: Effect, correlation: str | None) -> Any:
        if isinstance(effect, Together):
            return await self._together(effect, correlation)
        if isinstance(effect, INLINE_JOURNAL_EFFECTS):
            return self.answer_inline(effect)
        if isinstance(effect, QueueSettlementNotice) and not self.notices:
            return None  # no merchant platform to tell: nothing is owed
        try:
            # The hop timers observe by hand: prometheus' ``time()`` builds a context manager object per call.
            if isinstance(effect, HSM_EFFECTS):
                started = perf_counter()
                try:
                    answers = await self.hsm.call_many(hsm_commands(effect), txn=correlation)
                finally:
                    _HSM_HOP.observe(perf_counter() - started)
                return hsm_result(effect, answers)
            if isinstance(effect, AskLedger):
                started = perf_counter()
                try:
                    return await self.ledger.submit(effect.request)
                finally:
                    _LEDGER_HOP.observe(perf_counter() - started)
            if isinstance(effect, AskScheme):
                with _SCHEME_HOP.time():
                    return await self._ask_scheme(effect, SchemeTrace(self.trace, correlation))
            if isinstance(effect, AskWallet):
                if self.wallet is None:
                    return PeerFailure("wallet", FailureKind.UNAVAILABLE, "no wallet host configured")
                return await self.wallet.request(effect.request)
        except WalletTimeout as exc:
            log.warning("wallet host timed out: %s", exc)
            return PeerFailure("wallet", FailureKind.TIMEOUT, str(exc))
        except WalletUnavailable as exc:
            log.warning("wallet host unavailable: %s", exc)
            return PeerFailure("wallet", FailureKind.UNAVAILABLE, str(exc))
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
        except SwitchTimeout as exc:
            log.warning("scheme switch timed out: %s", exc)
            return PeerFailure("scheme", FailureKind.TIMEOUT, str(exc))
        except SwitchLinkError as exc:
            log.warning("scheme switch unavailable: %s", exc)
            return PeerFailure("scheme", FailureKind.UNAVAILABLE, str(exc))
        result = await self.journal_writes.submit(journal_call(effect))
        if isinstance(effect, QUEUEING_EFFECTS):  # a forwarder has a new row to send
            self._reversal_queued()
        return result

    async def _ask_scheme(self, effect: AskScheme, hops: SchemeTrace) -> LedgerAnswer | PeerFailure:
        """CA (the terminal's PIN block to the acquirer zone's ZPK) when there is a PIN, then the switch; each hop
        traced as it happens."""
        request = effect.request
        if self.scheme is None:
            return PeerFailure("scheme", FailureKind.UNAVAILABLE, "no scheme switch configured")
        block = None
        if effect.pin_block is not None:
            hops.translating_pin()
            try:
                block = await self.hsm.translate_pin(
                    effect.tpk_under_lmk, effect.zpk_under_lmk, effect.pin_block, request.pan
                )
            except HsmError as exc:
                hops.translated_pin(None if isinstance(exc, HsmUnavailable) else exc.error_code)
                if exc.error_code != PIN_BLOCK_INVALID or isinstance(exc, HsmUnavailable):
                    raise
                return LedgerAnswer(response_code=ResponseCode.PIN_FORMAT_ERROR, rrn=request.rrn)
            hops.translated_pin("00")
        fields = switch_request(request, pin_block=block, track2=effect.track2, mcc=effect.mcc).fields()
        header = SwitchHeader(
            destination_id=self.scheme.peer_id, source_id=self.scheme.own_id, transaction_info=request.stan
        )
        hops.sending(header, fields)
        try:
            answer = await self.scheme.exchange(fields)
        except SwitchLinkError as exc:
            hops.failed(FailureKind.TIMEOUT if isinstance(exc, SwitchTimeout) else FailureKind.UNAVAILABLE)
            raise
        hops.answered(answer)
        return ledger_answer(answer, request.rrn)


#: HSM error 20 to CA: the terminal's PIN block does not decrypt to a PIN (answered 99, as on-us).
PIN_BLOCK_INVALID = "20"
