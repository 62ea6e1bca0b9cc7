"""Thin anyio shell around :class:`scheme.core.SwitchCore`: acquirers in, issuers out (docs/scheme.md).

Requests are answered each in its own task (:mod:`acqkit.requestserver`), matched by MTI class, 32, 37. For one
request: decode (a bad header or body is sent back with a reject code), find the sender by the header's
source id (unknown: rejected), verify its MAC under the sender's ZAK at the switch's HSM (failed: rejected), a
repeat of a journalled key gets its first answer; else the core routes it; a forwarded request has its PIN block
translated (CC) and goes to the issuer under the issuer's ZAK; the issuer's verified answer, or the stand-in
decision when the issuer is silent for ``issuer_timeout`` or unreachable, is journalled and then answered.
Every leg is logged (masked) and traced (``link="switch"``).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import ssl
import time
from typing import Final

import anyio
import anyio.abc

from acqkit import txnlog
from acqkit.datakey import DataKey, DataKeyError
from acqkit.groupcommit import CommitFailed, CommitTimeout, GroupCommit
from acqkit.requestserver import serve_requests
from acqkit.serving import PLAIN, Serving
from acqkit.traceflush import flush_traces
from hsm_sim.client import HsmClient, HsmError
from scheme.client import (
    ISSUER_TLS_NAME,
    SwitchLinkClient,
    SwitchLinkError,
    SwitchUnavailable,
    SwitchUnreachable,
    ZoneMac,
    encode_with_mac,
)
from scheme.core import UNDOING, Forward, LegRecord, NotInMessageSet, Reply, SwitchCore
from scheme.journal import SwitchJournal
from scheme.members import Member
from wire.constants import REVERSAL_DONE_CODES, Mti, ResponseCode
from wire.errors import WireError
from wire.masking import mask_pan
from wire.switchlink import (
    RejectCode,
    SwitchHeader,
    SwitchHeaderError,
    SwitchMessage,
    decode_switch_message,
    reject_frame,
)
from wire.trace import Direction, TraceWriter, correlation_id

log = logging.getLogger("acqsim.scheme")

#: How long the switch waits for an issuer before it stands in (the acquirer's own timeout must be longer).
ISSUER_TIMEOUT_S: Final = 3.0
#: How often the switch sends again the reversals it owes issuers, and how many tries before it gives up.
REVERSAL_RETRY_S: Final = 5.0
REVERSAL_MAX_TRIES: Final = 20
#: The issuer's answers to a stand-in advice that end its store-and-forward: it posted it (00, or a repeat's
#: first answer), or its ledger declined it (the decline is the issuer's to resolve; logged). 96 and 91 mean
#: its ledger did not answer: the advice is sent again.
ADVICE_TAKEN_CODES: Final = frozenset(
    {
        ResponseCode.APPROVED,
        ResponseCode.INSUFFICIENT_FUNDS,
        ResponseCode.INVALID_CARD,
        ResponseCode.EXPIRED_CARD,
        ResponseCode.FORMAT_ERROR,
    }
)
#: HSM error 20: the PIN block does not decrypt to a PIN under the sender's ZPK.
_HSM_PIN_BLOCK_INVALID: Final = "20"


class SwitchShell:
    """The switch's I/O: the HSM, the journal, and one link per issuer."""

    def __init__(
        self,
        core: SwitchCore,
        journal: SwitchJournal,
        hsm: HsmClient,
        *,
        issuer_timeout: float = ISSUER_TIMEOUT_S,
        trace: TraceWriter | None = None,
        data_key: DataKey | None = None,
        issuer_tls: ssl.SSLContext | None = None,
    ) -> None:
        """``data_key`` seals the reversals owed to issuers in the journal (they hold a PAN); without one, a key
        that lives only in this process (owed reversals then do not survive a restart). ``issuer_tls``: the
        switch's client context (:mod:`acqkit.tls`); every issuer host must then prove it is ``issuer``."""
        self.issuer_tls = issuer_tls
        self.core = core
        self.data_key = data_key if data_key is not None else DataKey.ephemeral()
        #: A PAN's fingerprint must outlive a restart to compare a repeat with its first: only under a kept key
        #: (without one, a repeat's PAN is compared masked).
        self._pan_fingerprints = data_key is not None
        #: Requests refused with 94: a journalled key repeated with other content.
        self.conflicts = 0
        self.journal = journal
        self.hsm = hsm
        self.issuer_timeout = issuer_timeout
        self.tracer = trace if trace is not None and trace.enabled else None
        self._issuers: dict[str, SwitchLinkClient] = {}
        #: Legs that finish together share one journal transaction (``serve`` runs the flusher).
        self.journal_writes: GroupCommit[tuple[LegRecord, tuple[str, str] | None], bool] = GroupCommit(
            "switch journal", self.journal.record_many
        )

    def _issuer_link(self, issuer: Member) -> SwitchLinkClient:
        link = self._issuers.get(issuer.institution_id)
        if link is None:
            assert issuer.issuer_host is not None and issuer.issuer_port is not None
            link = SwitchLinkClient(
                issuer.issuer_host,
                issuer.issuer_port,
                own_id=self.core.switch_id,
                peer_id=issuer.institution_id,
                zone=ZoneMac(self.hsm, issuer.zak),
                timeout=self.issuer_timeout,
                tls=self.issuer_tls,
                server_name=ISSUER_TLS_NAME if self.issuer_tls is not None else None,
            )
            self._issuers[issuer.institution_id] = link
        return link

    async def aclose(self) -> None:
        for link in self._issuers.values():
            await link.aclose()

    def _trace(self, direction: Direction, peer: str, payload: bytes, fields: dict[str, str], note: str = "") -> None:
        if self.tracer is not None:
            cid = correlation_id(fields.get("41", "?"), fields.get("11", "?"), fields.get("13"))
            self.tracer.record(
                direction=direction,
                link="switch",
                peer=peer,
                payload=payload,
                correlation_id=cid,
                note=note or None,
            )

    async def answer(self, frame: bytes, peer: str) -> bytes:
        """The frame to send back for one request frame from an acquirer (never raises for bad input). Without
        its HSM the switch can neither check nor make a MAC: the frame goes back rejected (10005), and the
        acquirer treats that as no answer."""
        try:
            return await self._answer(frame, peer)
        except HsmError as exc:
            log.error("cannot process a frame from %s without the HSM: %s", peer, exc)  # noqa: TRY400 - no payload
        except (CommitFailed, CommitTimeout) as exc:
            log.error("cannot journal a leg from %s: %s", peer, exc)  # noqa: TRY400 - no payload
        return reject_frame(frame, RejectCode.CANNOT_PROCESS, own_id=self.core.switch_id)

    async def _answer(self, frame: bytes, peer: str) -> bytes:
        try:
            message = decode_switch_message(frame)
        except SwitchHeaderError as exc:
            log.warning("rejected a frame from %s: %s", peer, exc)
            return reject_frame(frame, RejectCode.HEADER_FORMAT, own_id=self.core.switch_id)
        except WireError as exc:
            log.warning("rejected a frame from %s: %s", peer, exc)
            return reject_frame(frame, RejectCode.BODY_FORMAT, own_id=self.core.switch_id)
        self._trace("in", peer, frame, message.fields)
        acquirer = self.core.member(message.header.source_id)
        if acquirer is None:
            log.warning("rejected a frame from %s: source %s is no member", peer, message.header.source_id)
            return reject_frame(frame, RejectCode.UNKNOWN_SOURCE, own_id=self.core.switch_id)
        zone = ZoneMac(self.hsm, acquirer.zak)
        if not await zone.verify(message):
            log.warning("rejected a frame from %s (member %s): MAC failed", peer, acquirer.institution_id)
            return reject_frame(frame, RejectCode.MAC_FAILED, own_id=self.core.switch_id)
        started = time.perf_counter()
        fields = await self._answer_fields(message)
        if txnlog.enabled():  # one record per switch leg: what came in, its answer, the time the issuer took
            txn = correlation_id(message.fields.get("41", "?"), message.fields.get("11", "?"))
            shown = {**txnlog.iso_summary(message.fields), "code": fields.get("39")}
            elapsed = f"{(time.perf_counter() - started) * 1000:.1f}"
            txnlog.log_transaction("scheme", txn, **shown, acquirer=acquirer.institution_id, elapsed_ms=elapsed)
        header = SwitchHeader(
            destination_id=acquirer.institution_id,
            source_id=self.core.switch_id,
            transaction_info=message.header.transaction_info,
        )
        out = await encode_with_mac(header, fields, zone)
        self._trace("out", peer, out, fields, fields.get("39", ""))
        return out

    async def _answer_fields(self, message: SwitchMessage) -> dict[str, str]:
        fields = message.fields
        known = await anyio.to_thread.run_sync(
            self.journal.find, fields.get("32", ""), fields.get("37", ""), fields.get("t", "")[:2]
        )
        pan_fingerprint = self.data_key.fingerprint(fields.get("2", "")) if self._pan_fingerprints else ""
        if known is not None:
            differs = self.core.repeat_differences(known, fields, pan_fingerprint=pan_fingerprint)
            if differs:
                self.conflicts += 1
                first, again = known.content(), self.core.repeat_content(fields)
                log.warning(
                    "key conflict: acquirer %s RRN %s class %s first %s, now %s: differs in %s; refused 94",
                    known.acquirer_id,
                    known.rrn,
                    known.msg_class,
                    " ".join(f"{part}={first[part]}" for part in differs),
                    " ".join(f"{part}={again[part]}" for part in differs),
                    ", ".join(differs),
                )
                return self.core.refuse_repeat(fields, known)
            log.info("repeat of acquirer %s RRN %s: first answer %s", known.acquirer_id, known.rrn, known.response_code)
            return self.core.replay(fields, known)
        started = time.perf_counter()
        outcome = self.core.route(message)
        if isinstance(outcome, NotInMessageSet):
            log.info(
                "MTI %s / 3 %s from acquirer %s is not in the message set: 40",
                fields.get("t"),
                fields.get("3"),
                fields.get("32"),
            )
            return outcome.fields
        reversal: tuple[str, str] | None = None
        if isinstance(outcome, Reply):
            reply = outcome
        else:
            reply, owed = await self._forward(outcome)
            if owed is not None:
                reversal = (outcome.issuer.institution_id, self.data_key.seal(json.dumps(owed)))
        with anyio.CancelScope(shield=True):  # journalled before answered, whatever happens to the caller
            record = dataclasses.replace(reply.record, pan_fingerprint=pan_fingerprint)
            await self.journal_writes.submit((record, reversal))
        log.info(
            "%s %s acq %s → iss %s RRN %s %s: %s%s (%.1f ms)",
            record.mti,
            record.op,
            record.acquirer_id,
            record.issuer_id or "-",
            record.rrn,
            mask_pan(fields.get("2", "")),
            record.response_code.value,
            " stand-in" if record.stand_in else "",
            (time.perf_counter() - started) * 1000,
        )
        return reply.fields

    async def _forward(self, forward: Forward) -> tuple[Reply, dict[str, str] | None]:
        """The reply, and the reversal owed to the issuer if its answer was lost and the switch did not approve."""
        fields = dict(forward.fields)
        if forward.translate_pin:
            try:
                block = await self.hsm.translate_pin_zone(
                    forward.acquirer.zpk, forward.issuer.zpk, bytes.fromhex(fields["52"]), fields["2"]
                )
            except (HsmError, ValueError) as exc:
                code = getattr(exc, "error_code", "")
                log.warning("PIN translation for RRN %s failed: %s", fields.get("37"), exc)
                rc = (
                    ResponseCode.PIN_FORMAT_ERROR if code == _HSM_PIN_BLOCK_INVALID else ResponseCode.SYSTEM_MALFUNCTION
                )
                return self.core.decline(forward, rc), None
            fields["52"] = block.hex().upper()
        link = self._issuer_link(forward.issuer)
        try:
            answer = await link.exchange(fields)
        except (SwitchLinkError, HsmError) as exc:
            log.warning(
                "issuer %s unreachable or silent for RRN %s (%s): standing in",
                forward.issuer.institution_id,
                fields["37"],
                exc,
            )
            stood_in = False
            if forward.op in UNDOING:
                provisional = self.core.decline(forward, ResponseCode.ISSUER_UNAVAILABLE).record
                stood_in = await anyio.to_thread.run_sync(self.journal.original_stood_in, provisional)
            reply = self.core.stand_in(forward, original_stood_in=stood_in)
            advice = self.core.stand_in_advice(forward, reply)
            if advice is not None:
                return reply, advice
            never_sent = isinstance(exc, SwitchUnreachable)
            return reply, None if never_sent else self.core.issuer_reversal(forward, reply)
        return self.core.relay(forward, answer.fields), None

    async def retry_reversals(self) -> int:
        """Send every message owed to an issuer once, oldest first (reversals, stand-in advices and the undoing
        of stand-in approvals); returns how many the issuers took. After an issuer's first failure nothing
        more goes to it in this pass, so each issuer hears its messages in order."""
        taken = 0
        failed: set[str] = set()
        for key, issuer_id, sealed, _ in await anyio.to_thread.run_sync(self.journal.pending_reversals):
            if issuer_id in failed:
                continue
            issuer = self.core.member(issuer_id)
            done = False
            try:
                if issuer is None or not issuer.issues:
                    raise SwitchUnavailable(f"{issuer_id} is no issuer any more")
                fields = json.loads(self.data_key.open(sealed))
                answer = await self._issuer_link(issuer).exchange(fields)
                done = answer.fields.get("39") in (
                    ADVICE_TAKEN_CODES if fields.get("t") == Mti.STAND_IN_ADVICE else REVERSAL_DONE_CODES
                )
            except (SwitchLinkError, HsmError, DataKeyError) as exc:
                log.info(
                    "message owed for acquirer %s RRN %s to issuer %s not taken yet: %s", key[0], key[1], issuer_id, exc
                )
                failed.add(issuer_id)
            await anyio.to_thread.run_sync(
                functools.partial(self.journal.reversal_outcome, key, done=done, max_tries=REVERSAL_MAX_TRIES)
            )
            taken += done
        return taken

    async def run_reversals(self, *, interval: float = REVERSAL_RETRY_S) -> None:
        """Until cancelled: send the owed reversals again every ``interval`` seconds."""
        while True:
            await self.retry_reversals()
            await anyio.sleep(interval)


async def serve(
    host: str,
    port: int,
    *,
    shell: SwitchShell,
    serving: Serving = PLAIN,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the switch link on ``host:port`` until cancelled; ``task_status.started(port)``."""
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(shell.journal_writes.run_flusher)
            if shell.tracer is not None:
                await tg.start(flush_traces, shell.tracer)
            listening = functools.partial(serve_requests, host, port, shell.answer, name="scheme", serving=serving)
            task_status.started(await tg.start(listening))
            tg.start_soon(shell.run_reversals)
    finally:
        with anyio.CancelScope(shield=True):
            await shell.aclose()
