"""Thin anyio shell around :mod:`frontend.core`: carries out each effect under its own timeout.

Frames on one connection are processed concurrently (the NAC multiplexes many terminals on one link), up to
``MAX_IN_FLIGHT_PER_CONNECTION``; each answer goes back as soon as it is ready. A forwarder task sends the
journal's pending reversals to the ledger until each is acknowledged (store-and-forward survives restarts:
the queue lives in the journal).
"""

from __future__ import annotations

import functools
import logging
import sqlite3
from collections.abc import Callable
from typing import Any, Final, Literal

import anyio
import anyio.abc

from acqkit.groupcommit import CommitFailed, GroupCommit
from acqkit.netio import FramedConnection, acquire_slot, serve_tcp
from acqkit.serving import PLAIN, Serving
from core_ledger.api import LedgerOp, LedgerRequest
from core_ledger.client import LedgerClient, LedgerTimeout, LedgerUnavailable
from core_ledger.hostlink import request_fields
from frontend.core import (
    UNKNOWN_OUTCOME_CODES,
    Context,
    Reply,
    answer_header,
    malfunction_reply,
    process,
    reversal_of,
)
from frontend.effects import (
    AskLedger,
    Effect,
    FailureKind,
    GenerateMac,
    GenerateWorkingKeys,
    JournalCall,
    JournalRead,
    PeerFailure,
    QueueReversal,
    VerifyMac,
    VerifyMacAndPin,
    VerifyPin,
)
from frontend.journal import MAX_REVERSAL_TRIES, Journal
from frontend.recovery import settle_unsettled
from hsm_sim.client import HsmClient, HsmError, HsmUnavailable, KeyType, PinVerification
from wire.codec import decode_pos_body, encode_host
from wire.constants import ResponseCode
from wire.errors import WireError
from wire.paycrypto import MacAlgorithm
from wire.posframe import PosFrame
from wire.trace import TraceWriter, correlation_id

log = logging.getLogger("acqsim.frontend")

MAX_IN_FLIGHT_PER_CONNECTION: Final = 256
IDLE_TIMEOUT_S: Final = 600.0
#: How often pending reversals are retried when nothing wakes the forwarder sooner.
REVERSAL_RETRY_S: Final = 1.0


_TRACED = (AskLedger, GenerateWorkingKeys, VerifyMac, GenerateMac, VerifyPin, VerifyMacAndPin)
_HSM_CODES = {GenerateWorkingKeys: "A0", VerifyMac: "M8", GenerateMac: "M6", VerifyPin: "DC"}


def _trace_view(effect: Effect) -> tuple[Literal["hsm", "host"], bytes]:
    """What a trace shows of an HSM or ledger call: the host-link message, or the HSM command code only."""
    if isinstance(effect, AskLedger):
        return "host", encode_host(request_fields(effect.request))
    return "hsm", f"----{_HSM_CODES[type(effect)]}".encode("ascii")


def _result_note(result: Any) -> str:
    """A trace note for an HSM or ledger result: what it said, never a value."""
    if isinstance(result, PeerFailure):
        return f"{result.peer} {result.kind.value}"
    if isinstance(result, bool):
        return "verified" if result else "NOT verified"
    if isinstance(result, PinVerification):
        return f"PIN {result.value}"
    if isinstance(result, tuple):
        return "PIK and MAK generated"
    if isinstance(result, bytes):
        return "MAC generated"
    code = getattr(result, "response_code", None)
    return str(getattr(code, "value", code))


def _peer(link: str) -> str:
    return "ledger" if link == "host" else "hsm"


def _correlation(frame: PosFrame) -> str | None:
    try:
        fields = decode_pos_body(frame.body)
    except WireError:
        return None
    return correlation_id(fields.get("41", "?"), fields.get("11", "?")) if "11" in fields else None


class Frontend:
    def __init__(
        self, ctx: Context, journal: Journal, hsm: HsmClient, ledger: LedgerClient, *, trace: TraceWriter | None = None
    ) -> None:
        self.ctx, self.journal, self.hsm, self.ledger = ctx, journal, hsm, ledger
        #: Journal writes of all transactions in flight share one commit (see ``serve``, which runs it).
        self.journal_writes: GroupCommit[Callable[[Journal], Any], Any] = GroupCommit("journal", journal.run_batch)
        self.trace = trace if trace is not None and trace.enabled else None
        self._reversal_wakeup = anyio.Event()
        self.answered = 0

    async def carry_out(self, effect: Effect, correlation: str | None = None) -> Any:
        trace = self.trace if isinstance(effect, _TRACED) else None
        # M8 and DC sent together are traced as the two commands they are.
        parts: tuple[Effect, ...] = (effect.mac, effect.pin) if isinstance(effect, VerifyMacAndPin) else (effect,)
        views = [_trace_view(part) for part in parts] if trace is not None else []
        if trace is not None:
            for part, (link, payload) in zip(parts, views, strict=True):
                trace.record(
                    direction="out",
                    link=link,
                    peer=_peer(link),
                    payload=payload,
                    correlation_id=correlation,
                    note=type(part).__name__,
                )
        result = await self._carry_out(effect)
        if isinstance(effect, VerifyMacAndPin) and isinstance(result, PeerFailure):
            result = (result, result)  # the HSM failed both checks
        if trace is not None:
            results = result if isinstance(effect, VerifyMacAndPin) else (result,)
            for (link, payload), part_result in zip(views, results, strict=True):
                trace.record(
                    direction="in",
                    link=link,
                    peer=_peer(link),
                    payload=payload[:6] + b"00" if link == "hsm" else b"",
                    correlation_id=correlation,
                    note=_result_note(part_result),
                )
        return result

    async def _carry_out(self, effect: Effect) -> Any:
        try:
            if isinstance(effect, JournalRead):
                return effect.call(self.journal)
            if isinstance(effect, JournalCall):
                return await self.journal_writes.submit(effect.call)
            if isinstance(effect, AskLedger):
                return await self.ledger.submit(effect.request)
            if isinstance(effect, QueueReversal):
                request = effect.request
                await self.journal_writes.submit(lambda j: j.queue_reversal(request))
                self._reversal_wakeup.set()
                return None
            if isinstance(effect, GenerateWorkingKeys):
                pik = await self.hsm.generate_key(KeyType.TPK, under_tmk=effect.tmk_under_lmk)
                mak = await self.hsm.generate_key(KeyType.TAK, under_tmk=effect.tmk_under_lmk)
                return pik, mak
            if isinstance(effect, VerifyMac):
                return await self.hsm.verify_mac(
                    KeyType.TAK, effect.mak_under_lmk, effect.data, effect.mac, MacAlgorithm.CUP_ECB
                )
            if isinstance(effect, GenerateMac):
                return await self.hsm.generate_mac(KeyType.TAK, effect.mak_under_lmk, effect.data, MacAlgorithm.CUP_ECB)
            if isinstance(effect, VerifyPin):
                return await self.hsm.verify_pin_pvv(
                    effect.tpk_under_lmk,
                    effect.pvk_under_lmk,
                    effect.pin_block,
                    effect.pan,
                    pvki=effect.pvki,
                    pvv=effect.pvv,
                )
            if isinstance(effect, VerifyMacAndPin):
                mac, pin = effect.mac, effect.pin
                verified, outcome = await self.hsm.verify_mac_and_pin_pvv(
                    (KeyType.TAK, mac.mak_under_lmk, mac.data, mac.mac, MacAlgorithm.CUP_ECB),
                    (pin.tpk_under_lmk, pin.pvk_under_lmk, pin.pin_block, pin.pan, pin.pvki, pin.pvv),
                )
                return verified, outcome
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
        raise TypeError(f"unknown effect {type(effect).__name__}")

    async def answer(self, payload: bytes) -> bytes | None:
        try:
            frame = PosFrame.parse(payload)
        except WireError as exc:
            log.warning("dropping a frame: %s", exc)
            return None
        correlation = _correlation(frame) if self.trace is not None else None
        if self.trace is not None:
            self.trace.record(direction="in", link="pos", peer="nac", payload=payload, correlation_id=correlation)
        flow = process(frame, self.ctx)
        asked: LedgerRequest | None = None  # the request the ledger was asked, if it was
        try:
            effect = next(flow)
            while True:
                if isinstance(effect, AskLedger):
                    asked = effect.request
                effect = flow.send(await self.carry_out(effect, correlation))
        except StopIteration as stop:
            reply: Reply = stop.value
        except (CommitFailed, sqlite3.Error, TimeoutError) as exc:  # the journal failed or hung
            if asked is not None:
                # The ledger may have posted: a 96 would tell the terminal nothing happened. No answer instead,
                # so the terminal reverses, as it does after any lost answer (the reversal finds the journaled
                # request once the journal is back).
                log.error("journal failed after the ledger was asked, not answering: %s", exc)  # noqa: TRY400
                return None
            log.error("journal failed, answering 96: %s", exc)  # noqa: TRY400 - the cause, no payload
            reply = malfunction_reply(frame, self.ctx, "journal failed")
        except Exception:
            # A fault of our own in one transaction: it costs that transaction only, never the link.
            log.exception("transaction failed inside the front-end; answering 96")
            if asked is not None and asked.op is not LedgerOp.REVERSAL:
                await self._queue_unknown(asked, frame)  # the ledger may have posted: undo it, never guess
            reply = malfunction_reply(frame, self.ctx, "front-end fault")
        log.info("%s", reply.note)
        if reply.body is None:
            return None
        self.answered += 1
        answer = frame.answer(reply.body, header=answer_header(frame, reply)).to_bytes()
        if self.trace is not None:
            self.trace.record(
                direction="out", link="pos", peer="nac", payload=answer, correlation_id=correlation, note=reply.note
            )
        return answer

    async def _queue_unknown(self, request: LedgerRequest, frame: PosFrame) -> None:
        """Store a reversal of ``request``, whose outcome at the ledger is unknown (store-and-forward)."""
        try:
            mti = decode_pos_body(frame.body)["t"]
            rrn = await self.journal_writes.submit(lambda j: j.next_rrn())
            await self._carry_out(QueueReversal(reversal_of(request, mti, rrn)))
        except Exception:
            log.exception("could not queue the reversal of STAN %s; the terminal's reversal must undo it", request.stan)

    async def handle(self, conn: FramedConnection) -> None:
        slots = anyio.Semaphore(MAX_IN_FLIGHT_PER_CONNECTION)

        async def one(payload: bytes) -> None:
            try:
                answer = await self.answer(payload)
                if answer is not None:
                    await conn.send(answer)
            finally:
                slots.release()

        async with anyio.create_task_group() as tg:
            while (payload := await conn.receive(IDLE_TIMEOUT_S)) is not None:
                await acquire_slot(slots)
                tg.start_soon(one, payload)

    async def forward_reversals(self) -> None:
        while True:
            with anyio.move_on_after(REVERSAL_RETRY_S):
                await self._reversal_wakeup.wait()
            self._reversal_wakeup = anyio.Event()
            try:
                await self._forward_pending_reversals()
            except sqlite3.Error as exc:  # the queue stays in the journal: tried again on the next round
                log.error("cannot read or update the pending reversals: %s", exc)  # noqa: TRY400 - no payload

    async def _forward_pending_reversals(self) -> None:
        for reversal_id, request in await anyio.to_thread.run_sync(self.journal.pending_reversals):
            stan = request.original.stan if request.original else request.stan
            try:
                answer = await self.ledger.submit(request)
            except (LedgerTimeout, LedgerUnavailable):
                # Not a refusal: store-and-forward waits out an unreachable ledger however long it takes (each
                # failure is logged by the client); only the ledger's own answers count towards a dead letter.
                return
            code = answer.response_code
            if code is ResponseCode.APPROVED:  # only 00 means undone (or never posted: the ledger tombstones it)
                await anyio.to_thread.run_sync(self.journal.reversal_done, reversal_id)
                log.info("reversal of STAN %s acknowledged by the ledger", stan)
            elif code in UNKNOWN_OUTCOME_CODES:  # the ledger's own failure: may succeed when tried again
                dead = await anyio.to_thread.run_sync(self.journal.reversal_failed, reversal_id, code.value)
                if dead:
                    log.error("reversal of STAN %s given up after %d tries: a dead letter", stan, MAX_REVERSAL_TRIES)
            else:  # the ledger refuses it for good (12: its original changed since): an operator must settle it
                await anyio.to_thread.run_sync(self.journal.reversal_dead, reversal_id, code.value)
                log.error("reversal of STAN %s refused by the ledger with %s: a dead letter", stan, code.value)


async def serve(
    host: str,
    port: int,
    *,
    frontend: Frontend,
    serving: Serving = PLAIN,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    async with anyio.create_task_group() as tg:
        await tg.start(frontend.journal_writes.run_flusher)
        # what a crash left pending, before any new traffic
        await settle_unsettled(frontend.journal, frontend.journal_writes, frontend.ledger)
        tg.start_soon(frontend.forward_reversals)
        bound = await tg.start(
            functools.partial(
                serve_tcp,
                host,
                port,
                frontend.handle,
                name="frontend",
                max_connections=serving.max_connections,
                tls=serving.server_tls,
            )
        )
        task_status.started(bound)
