"""Thin anyio shell of an issuer host: the switch link in, the issuer's HSM and ledger out.

One request: decode (bad frames are sent back with a reject code), the sender must be the switch, the MAC
must verify under the zone's ZAK (issuer's HSM), :func:`issuer_host.core.accept` turns it into a ledger
request; a PIN block is verified by the issuer's HSM (EC, under the zone's ZPK, against the PVV); the ledger
decides; the answer is MAC'd and sent back. A ledger that cannot be reached or does not answer in time gives
96 (the switch relays it; a ledger that did post is undone by the acquirer's reversal, which the switch
carries here like any request).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time

import anyio
import anyio.abc

from acqkit import txnlog
from acqkit.requestserver import serve_requests
from acqkit.serving import PLAIN, Serving
from acqkit.traceflush import flush_traces
from core_ledger.api import LedgerAnswer
from core_ledger.client import LedgerClient, LedgerError
from hsm_sim.client import HsmClient, HsmError
from issuer_host.core import PIN_VERDICT_CODES, Accepted, accept, answer_fields
from scheme.client import ZoneMac, encode_with_mac
from wire.constants import ResponseCode
from wire.errors import WireError
from wire.masking import mask_pan
from wire.switchlink import RejectCode, SwitchHeader, SwitchHeaderError, decode_switch_message, reject_frame
from wire.trace import TraceWriter, correlation_id

log = logging.getLogger("acqsim.issuer")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class IssuerKeys:
    """The issuer's zone keys with the switch and its PVK, all under the issuer's own LMK."""

    zak: str = dataclasses.field(repr=False)
    zpk: str = dataclasses.field(repr=False)
    pvk: str = dataclasses.field(repr=False)


class IssuerShell:
    def __init__(
        self,
        *,
        issuer_id: str,
        switch_id: str,
        keys: IssuerKeys,
        hsm: HsmClient,
        ledger: LedgerClient,
        trace: TraceWriter | None = None,
    ) -> None:
        self.issuer_id, self.switch_id = issuer_id, switch_id
        self.keys = keys
        self.hsm = hsm
        self.ledger = ledger
        self.zone = ZoneMac(hsm, keys.zak)
        self.tracer = trace if trace is not None and trace.enabled else None

    async def answer(self, frame: bytes, peer: str) -> bytes:
        """The frame to send back (never raises for bad input); without its HSM, the frame rejected (10005)."""
        try:
            return await self._answer(frame, peer)
        except HsmError as exc:
            log.error("cannot process a frame from %s without the HSM: %s", peer, exc)  # noqa: TRY400 - no payload
            return reject_frame(frame, RejectCode.CANNOT_PROCESS, own_id=self.issuer_id)

    async def _answer(self, frame: bytes, peer: str) -> bytes:
        try:
            message = decode_switch_message(frame)
        except SwitchHeaderError as exc:
            log.warning("rejected a frame from %s: %s", peer, exc)
            return reject_frame(frame, RejectCode.HEADER_FORMAT, own_id=self.issuer_id)
        except WireError as exc:
            log.warning("rejected a frame from %s: %s", peer, exc)
            return reject_frame(frame, RejectCode.BODY_FORMAT, own_id=self.issuer_id)
        fields = message.fields
        cid = correlation_id(fields.get("41", "?"), fields.get("11", "?"), fields.get("13"))
        if self.tracer is not None:
            self.tracer.record(direction="in", link="switch", peer=peer, payload=frame, correlation_id=cid)
        if message.header.source_id != self.switch_id:
            return reject_frame(frame, RejectCode.UNKNOWN_SOURCE, own_id=self.issuer_id)
        if not await self.zone.verify(message):
            log.warning("rejected a frame from %s: MAC failed", peer)
            return reject_frame(frame, RejectCode.MAC_FAILED, own_id=self.issuer_id)
        started = time.perf_counter()
        code, ledger_answer = await self._decide(fields)
        if txnlog.enabled():  # one record per issuer decision, with the time its HSM and ledger took
            txn = correlation_id(fields.get("41", "?"), fields.get("11", "?"))
            elapsed = f"{(time.perf_counter() - started) * 1000:.1f}"
            shown = {**txnlog.iso_summary(fields), "code": code.value}
            txnlog.log_transaction("issuer", txn, **shown, issuer=self.issuer_id, elapsed_ms=elapsed)
        out_fields = answer_fields(fields, code, ledger_answer)
        header = SwitchHeader(
            destination_id=self.switch_id, source_id=self.issuer_id, transaction_info=message.header.transaction_info
        )
        out = await encode_with_mac(header, out_fields, self.zone)
        if self.tracer is not None:
            self.tracer.record(
                direction="out", link="switch", peer=peer, payload=out, correlation_id=cid, note=code.value
            )
        log.info(
            "%s from acq %s RRN %s %s: %s",
            fields.get("t"),
            fields.get("32"),
            fields.get("37"),
            mask_pan(fields.get("2", "")),
            code.value,
        )
        return out

    async def _decide(self, fields: dict[str, str]) -> tuple[ResponseCode, LedgerAnswer | None]:
        accepted = accept(fields, issuer_id=self.issuer_id)
        if not isinstance(accepted, Accepted):
            return accepted, None
        if accepted.pin is not None:
            pin = accepted.pin
            try:
                verdict = await self.hsm.verify_interchange_pin_pvv(
                    self.keys.zpk, self.keys.pvk, pin.pin_block, pin.pan, pvki=pin.pvki, pvv=pin.pvv
                )
            except HsmError as exc:
                log.warning("PIN verification for RRN %s failed at the HSM: %s", fields.get("37"), exc)
                return ResponseCode.SYSTEM_MALFUNCTION, None
            if PIN_VERDICT_CODES[verdict] is not ResponseCode.APPROVED:
                return PIN_VERDICT_CODES[verdict], None
        try:
            answer = await self.ledger.submit(accepted.request)
        except LedgerError as exc:
            log.warning("the issuer's ledger did not answer RRN %s: %s", fields.get("37"), exc)
            return ResponseCode.SYSTEM_MALFUNCTION, None
        return answer.response_code, answer


async def serve(
    host: str,
    port: int,
    *,
    shell: IssuerShell,
    serving: Serving = PLAIN,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the switch link on ``host:port`` until cancelled; ``task_status.started(port)``."""
    async with anyio.create_task_group() as tg:
        if shell.tracer is not None:
            await tg.start(flush_traces, shell.tracer)
        listening = functools.partial(serve_requests, host, port, shell.answer, name="issuer", serving=serving)
        task_status.started(await tg.start(listening))
