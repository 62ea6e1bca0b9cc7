"""The shell's effect interpreter: carries out each effect of :mod:`frontend.effects` — HSM commands through
the HSM client, ledger requests through the ledger client, journal effects inline (memory reads) or through
the group commit (durable writes) — and turns a peer's failure into a :class:`~frontend.effects.PeerFailure`."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from time import perf_counter
from typing import Any, Final, Protocol

from acqkit.groupcommit import GroupCommit, Ticket
from acqkit.metrics import HOP_SECONDS
from core_ledger.api import LedgerAnswer
from core_ledger.client import HostFrame, LedgerClient, LedgerError, LedgerTimeout, LedgerUnavailable, host_frame
from frontend.effects import (
    HSM_EFFECTS,
    INLINE_JOURNAL_EFFECTS,
    QUEUEING_EFFECTS,
    AskLedger,
    AskScheme,
    AskWallet,
    Effect,
    FailureKind,
    HsmEffect,
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


#: A peer's error → the failure a flow sees: (error type, peer, kind, what the log says), the first match wins.
_PEER_FAILURES: Final = (
    (WalletTimeout, "wallet", FailureKind.TIMEOUT, "wallet host timed out"),
    (WalletUnavailable, "wallet", FailureKind.UNAVAILABLE, "wallet host unavailable"),
    (LedgerTimeout, "ledger", FailureKind.TIMEOUT, "ledger timed out"),
    (LedgerUnavailable, "ledger", FailureKind.UNAVAILABLE, "ledger unavailable"),
    (HsmUnavailable, "hsm", FailureKind.UNAVAILABLE, "HSM unavailable"),
    (HsmError, "hsm", FailureKind.ERROR, "HSM error"),
    (SwitchTimeout, "scheme", FailureKind.TIMEOUT, "scheme switch timed out"),
    (SwitchLinkError, "scheme", FailureKind.UNAVAILABLE, "scheme switch unavailable"),
)
#: The errors a peer's client raises that a flow sees as a :class:`~frontend.effects.PeerFailure`.
PEER_ERRORS: Final = tuple(kind for kind, *_ in _PEER_FAILURES)


def peer_failure(error: Exception) -> PeerFailure:
    """What a flow sees of ``error`` (one of :data:`PEER_ERRORS`), logged."""
    for kind, peer, failure, what in _PEER_FAILURES:
        if isinstance(error, kind):
            log.warning("%s: %s", what, error)
            return PeerFailure(peer, failure, str(error))
    raise error


class Continuation(Protocol):
    """Where :meth:`Interpreter.start` hands an effect's outcome: a flow stepped from the loop's callbacks."""

    def resume(self, result: Any) -> None:
        """The effect's result, as :meth:`Interpreter.carry_out` returns it."""

    def fail(self, error: Exception) -> None:
        """What :meth:`Interpreter.carry_out` would raise (a journal write that failed or timed out)."""

    def in_task(self, work: Callable[[], Awaitable[Any]], done: Callable[[Any], None]) -> None:
        """Run ``work`` in a task of the shell's, then ``done(result)``; :meth:`fail` if it raises."""


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
        frame = self._traced_frame(effect)
        traced = (
            EffectTrace(self.trace, effect, correlation, frame)
            if self.trace is not None and isinstance(effect, TRACED)
            else None
        )
        result = await self._carry_out(effect, correlation, frame)
        if isinstance(effect, VerifyMacAndPin) and isinstance(result, PeerFailure):
            result = (result, result)  # the HSM failed both checks
        if traced is not None:
            traced.answered(result)
        return result

    def answer_inline(self, effect: InlineJournalEffect) -> Any:
        """The answer of one of :data:`~frontend.effects.INLINE_JOURNAL_EFFECTS`, from the journal's memory: no
        wait, so the shell takes it without a coroutine (four a PIN purchase)."""
        return journal_call(effect)(self.journal)

    # -- the callback path: each effect started, its outcome handed to a continuation ------------------------

    def start(self, effect: Effect, correlation: str | None, then: Continuation) -> None:
        """Carry ``effect`` out for a flow stepped from the loop's callbacks: ``then`` gets what :meth:`carry_out`
        would return or raise. The effects of a purchase's path — HSM commands, the ledger, journal writes, and
        :class:`Together` of them — go without a task (a callback form of each client, a group-commit ticket);
        any other, or one whose peer link is not up on the callback path, runs :meth:`carry_out` in a task."""
        if isinstance(effect, HSM_EFFECTS):
            self._start_hsm(effect, correlation, then.resume, then)
        elif isinstance(effect, AskLedger):
            self._start_ledger(effect, correlation, then)
        elif isinstance(effect, Together):
            self._start_together(effect, correlation, then)
        elif isinstance(effect, (AskScheme, AskWallet, QueueSettlementNotice, *INLINE_JOURNAL_EFFECTS)):
            then.in_task(lambda: self.carry_out(effect, correlation), then.resume)
        else:  # a durable journal write
            ticket = self.journal_writes.enqueue(journal_call(effect))
            ticket.when_released(lambda: self._written(effect, ticket, then.resume, then.fail))

    def _written(
        self, effect: Effect, ticket: Ticket[Any], resume: Callable[[Any], None], fail: Callable[[Exception], None]
    ) -> None:
        try:
            result = self.journal_writes.outcome(ticket)
        except Exception as exc:  # failed or timed out: as carry_out raises it
            fail(exc)
            return
        if isinstance(effect, QUEUEING_EFFECTS):  # a forwarder has a new row to send
            self._reversal_queued()
        resume(result)

    def _start_hsm(
        self, effect: HsmEffect, correlation: str | None, resume: Callable[[Any], None], then: Continuation
    ) -> None:
        """An HSM effect through the client's callback form; ``resume`` gets its result."""
        started = perf_counter()
        traced: EffectTrace | None = None

        def answered(result: list[tuple[str, bytes]] | HsmError | None) -> None:
            _HSM_HOP.observe(perf_counter() - started)
            if result is None:  # the link was lost meanwhile: as the task path, once more on a fresh one
                then.in_task(lambda: self.carry_out(effect, correlation), resume)
                return
            value: Any
            try:
                value = peer_failure(result) if isinstance(result, HsmError) else hsm_result(effect, result)
            except HsmError as exc:
                value = peer_failure(exc)
            if isinstance(effect, VerifyMacAndPin) and isinstance(value, PeerFailure):
                value = (value, value)  # the HSM failed both checks
            if traced is not None:
                traced.answered(value)
            resume(value)

        try:
            on_callbacks = self.hsm.call_many_then(hsm_commands(effect), answered, txn=correlation)
        except HsmError as exc:  # no header tag free: the HSM is as good as unavailable
            on_callbacks = True
            asyncio.get_running_loop().call_soon(answered, exc)
        if not on_callbacks:
            then.in_task(lambda: self.carry_out(effect, correlation), resume)
        elif self.trace is not None:
            traced = EffectTrace(self.trace, effect, correlation)

    def _traced_frame(self, effect: Effect) -> HostFrame | None:
        """A ledger request encoded once for the client and the trace, when there is a trace."""
        return host_frame(effect.request) if self.trace is not None and isinstance(effect, AskLedger) else None

    def _start_ledger(self, effect: AskLedger, correlation: str | None, then: Continuation) -> None:
        started = perf_counter()
        traced: EffectTrace | None = None
        frame = self._traced_frame(effect)

        def answered(result: LedgerAnswer | LedgerError | None) -> None:
            _LEDGER_HOP.observe(perf_counter() - started)
            if result is None:  # the link was lost meanwhile: as the task path, once more on a fresh one
                then.in_task(lambda: self.carry_out(effect, correlation), then.resume)
                return
            value = peer_failure(result) if isinstance(result, LedgerError) else result
            if traced is not None:
                traced.answered(value)
            then.resume(value)

        if not self.ledger.submit_then(effect.request, answered, frame=frame):
            then.in_task(lambda: self.carry_out(effect, correlation), then.resume)
        elif self.trace is not None:
            traced = EffectTrace(self.trace, effect, correlation, frame)

    def _start_together(self, effect: Together, correlation: str | None, then: Continuation) -> None:
        """As :meth:`_together`: the writes queued, the HSM effects started, ``then`` resumed with every result
        in order once all have ended — or failed with the first write that failed."""
        parts = effect.effects
        results: list[Any] = [None] * len(parts)
        failures: dict[int, Exception] = {}
        left = len(parts)

        def ended(index: int, value: Any) -> None:
            nonlocal left
            results[index] = value
            left -= 1
            if left == 0:
                if failures:
                    then.fail(failures[min(failures)])
                else:
                    then.resume(tuple(results))

        def write_failed(index: int, error: Exception) -> None:
            failures[index] = error
            ended(index, None)

        tickets = {
            index: self.journal_writes.enqueue(journal_call(part))
            for index, part in enumerate(parts)
            if not isinstance(part, HSM_EFFECTS)
        }
        for index, part in enumerate(parts):
            if isinstance(part, HSM_EFFECTS):
                self._start_hsm(part, correlation, functools.partial(ended, index), then)
        for index, ticket in tickets.items():
            ticket.when_released(
                functools.partial(
                    self._written,
                    parts[index],
                    ticket,
                    functools.partial(ended, index),
                    functools.partial(write_failed, index),
                )
            )

    # -- the task path --------------------------------------------------------------------------------------

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

    async def _carry_out(self, effect: Effect, correlation: str | None, frame: HostFrame | None = None) -> Any:
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
                    return await self.ledger.submit(effect.request, frame=frame)
                finally:
                    _LEDGER_HOP.observe(perf_counter() - started)
            if isinstance(effect, AskScheme):
                with _SCHEME_HOP.time():
                    return await self._ask_scheme(effect, SchemeTrace(self.trace, correlation))
            if isinstance(effect, AskWallet):
                if self.wallet is None:
                    return PeerFailure("wallet", FailureKind.UNAVAILABLE, "no wallet host configured")
                return await self.wallet.request(effect.request)
        except PEER_ERRORS as exc:
            return peer_failure(exc)
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
