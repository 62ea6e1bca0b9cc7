"""The POS terminal as an async library: one method per transaction, over the NAC, state persisted.

Each exchange opens a short connection (as dial-up and GPRS terminals do), sends one frame and waits for its
answer under ``ANSWER_TIMEOUT_S``; with ``keep_alive`` the terminal keeps one connection open across exchanges
instead (as IP terminals on a leased line may). Before any request, a pending reversal is sent first. No
answer, or an answer whose MAC fails, leaves the reversal queued.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from types import TracebackType
from typing import Final, Self

import anyio

from acqkit.config import AcqsimConfig, CardFixture, Endpoint
from acqkit.netio import FramedConnection, connect
from terminal.chipflow import ReadMode, read_card
from terminal.reader import DukptReader, DukptScheme, ReaderOutput, initial_ksn_for, inject
from terminal.readerd import client as reader_link
from terminal.session import Original, Outcome, TerminalError, TerminalSession
from terminal.state import load_state, save_state, storage_key
from wire.constants import NetworkCode, ResponseCode
from wire.dukpt import SCHEME_AES, SCHEME_TDES
from wire.errors import FramingError, MessageDecodeError
from wire.fields import SettlementTotals
from wire.icc import ARPC_LEN, IssuerAnswer
from wire.readerlink import PinEntry

log = logging.getLogger("acqsim.terminal")

ANSWER_TIMEOUT_S: Final = 10.0


class PosTerminal:
    def __init__(
        self,
        config: AcqsimConfig,
        terminal_id: str,
        *,
        nac: Endpoint | None = None,
        state_dir: Path | None = None,
        timeout: float = ANSWER_TIMEOUT_S,
        persist: bool = True,
        keep_alive: bool = False,
    ) -> None:
        fixture = config.terminal(terminal_id)
        self.config = config
        self.nac = nac or config.nac.listen
        self.state_dir = state_dir or config.terminal_state_dir
        self.timeout = timeout
        #: ``False`` keeps the state in memory only (load terminals: thousands of them, nothing to resume).
        self.persist = persist
        self.keep_alive = keep_alive
        self._conn: FramedConnection | None = None  # kept open between exchanges with keep_alive
        #: TCP connections this terminal has opened to the NAC.
        self.connections_opened = 0
        self._storage_key = storage_key(bytes.fromhex(fixture.tmk))
        state = load_state(self.state_dir, terminal_id, fixture.merchant_id, key=self._storage_key)
        self.session = TerminalSession(
            state, bytes.fromhex(fixture.tmk), app_type=fixture.app_type, route=fixture.route
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
        self.save()

    async def close(self) -> None:
        """Close the kept-open connection, if any."""
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.aclose()

    def save(self) -> None:
        if self.persist:
            save_state(self.state_dir, self.session.state, key=self._storage_key)

    async def _send(self, payload: bytes) -> bytes | None:
        if self.keep_alive:
            return await self._send_kept(payload)
        try:
            conn = await connect(self.nac.host, self.nac.port, timeout=self.timeout)
        except (OSError, TimeoutError):
            return None
        self.connections_opened += 1
        try:
            await conn.send(payload)
            return await conn.receive(self.timeout)
        except (TimeoutError, OSError, anyio.BrokenResourceError, anyio.ClosedResourceError, FramingError):
            return None
        finally:
            await conn.aclose()

    async def _send_kept(self, payload: bytes) -> bytes | None:
        """One exchange on the kept-open connection, opened first if need be. Any failure closes it (the next
        exchange opens a new one) and counts as no answer, so a pending reversal stays queued."""
        try:
            if self._conn is None:
                self._conn = await connect(self.nac.host, self.nac.port, timeout=self.timeout)
                self.connections_opened += 1
            await self._conn.send(payload)
            answer = await self._conn.receive(self.timeout)
        except (TimeoutError, OSError, anyio.BrokenResourceError, anyio.ClosedResourceError, FramingError):
            answer = None
        if answer is None:
            await self.close()
        return answer

    async def _exchange(self, kind: str, payload: bytes) -> Outcome | None:
        answer = await self._send(payload)
        self.save()
        if answer is None:
            log.info("%s: no answer", kind)
            return None
        outcome = self.session.receive(kind, answer)
        self.save()
        return outcome

    async def exchange(self, kind: str, frame: bytes) -> Outcome | None:
        """Send a request the session has just built (``terminal.qrpay``): saved first, so a reversal it stored
        is durable before the request leaves; then the answer is checked."""
        self.save()
        return await self._exchange(kind, frame)

    async def send_pending_reversal(self) -> Outcome | None:
        frame = self.session.reversal_due()
        if frame is None:
            return None
        self.save()
        outcome = await self._exchange("reversal", frame)
        if self.session.state.pending_reversal is not None:
            self.session.reversal_failed()
            self.save()
        return outcome

    async def sign_on(self, *, with_tdk: bool = False) -> Outcome | None:
        return await self._exchange("sign_on", self.session.sign_on(with_tdk=with_tdk))

    async def echo(self) -> Outcome | None:
        return await self._exchange("echo", self.session.network(NetworkCode.ECHO))

    async def sign_off(self) -> Outcome | None:
        outcome = await self._exchange("sign_off", self.session.network(NetworkCode.SIGN_OFF))
        self.session.state.signed_on = False
        self.save()
        return outcome

    async def financial(
        self,
        kind: str,
        card: CardFixture,
        *,
        amount: int = 0,
        pin: str | None = None,
        original: Original | None = None,
        target_pan: str | None = None,
    ) -> Outcome | None:
        await self._ready()
        frame = self.session.financial(kind, card, amount=amount, pin=pin, original=original, target_pan=target_pan)
        self.save()  # the reversal is durable before the request leaves
        return await self._exchange(kind, frame)

    async def send_pending_advices(self) -> None:
        """Each stored 0620 advice, oldest first, until one goes unanswered (it is tried again before the next
        request): script results are retried until the host acknowledges them, as reversals are."""
        while (frame := self.session.advice_due()) is not None:
            self.save()
            outcome = await self._exchange("script_advice", frame)
            if outcome is None or not outcome.trusted:
                log.info("script advice: not acknowledged; tried again before the next request")
                return

    async def _ready(self) -> None:
        await self.send_pending_reversal()
        await self.send_pending_advices()
        if not self.session.state.signed_on:
            # Never signed on, or the host asked for a new sign-on (header processing request 3): do it now.
            signed = await self.sign_on()
            if signed is None or not signed.approved:
                raise TerminalError("terminal is not signed on and the host refused or did not answer a sign-on")

    async def card_financial(
        self,
        kind: str,
        card: CardFixture,
        *,
        mode: ReadMode,
        amount: int = 0,
        pin: str | None = None,
        force_chip_failure: bool = False,
    ) -> Outcome | None:
        """A purchase / pre-authorisation with the card read by chip (contact or contactless), or by the stripe
        after a chip failure (fallback). After the host's answer the card checks the ARPC and runs the issuer
        scripts; if it declines an approved transaction, the terminal reverses it at once (with the card's 55),
        and script results go in a 0620 advice."""
        await self._ready()
        state = self.session.state
        read, chip = read_card(
            card,
            imk=bytes.fromhex(self.config.imk_ac),
            atc=state.card_atcs.get(card.pan, 0),
            mode=mode,
            amount=amount,
            terminal_id=state.terminal_id,
            now=self.session.clock(),
            pin_entered=pin is not None,
            force_chip_failure=force_chip_failure,
        )
        if chip is not None:
            state.card_atcs[card.pan] = chip.atc  # before the request leaves: an ATC is never used twice
        frame = self.session.financial(kind, card, amount=amount, pin=pin, read=read)
        self.save()
        outcome = await self._exchange(kind, frame)
        if outcome is None or chip is None or not outcome.trusted:
            return outcome
        completion = chip.complete(host_approved=outcome.approved, answer=_issuer_answer(outcome))
        declined = outcome.approved and not completion.approves
        if declined:
            log.warning(
                "%s: the card declined after the host approved (issuer authenticated: %s): reversing",
                kind,
                completion.issuer_authenticated,
            )
            self.session.card_declined(outcome, read, completion)
            self.save()
            await self.send_pending_reversal()
        if completion.scripts_ran:
            self.session.script_advice(outcome, read, completion)  # stored; sent now and retried until answered
            await self.send_pending_advices()
        return dataclasses.replace(
            outcome,
            card_declined=declined,
            issuer_authenticated=completion.issuer_authenticated,
            scripts_ran=completion.scripts_ran,
        )

    def _reader(self, scheme: DukptScheme = DukptScheme.TDES) -> DukptReader:
        """The MPOS terminal's card reader, as the key injection facility loaded it (TEST BDK of the
        configuration; TDES KSN = key set id ‖ a device id from the terminal id ‖ counter; AES: initial key id =
        key set id ‖ the device id in 3 bytes, then a 4-byte counter), at its last counter."""
        state = self.session.state
        ksn = initial_ksn_for(self.config.bdk_ksi, state.terminal_id, scheme)
        reader = inject(bytes.fromhex(self.config.bdk), ksn, scheme)
        reader.counter = state.reader_counter
        return reader

    async def mpos_financial(
        self, kind: str, card: CardFixture, *, amount: int, pin: str | None, scheme: DukptScheme = DukptScheme.TDES
    ) -> Outcome | None:
        """An MPOS purchase: the reader reads ``card`` and encrypts PIN and track under its DUKPT keys (TDES or
        AES DUKPT); the phone (the session) builds the request from the reader's KSN and ciphertexts alone."""
        await self._ready()
        reader = self._reader(scheme)
        output = reader.encrypt(pan=card.pan, track2=card.track2, pin=pin)
        self.session.state.reader_counter = reader.counter  # saved before the request leaves: never reused
        wire_scheme = SCHEME_AES if scheme is DukptScheme.AES else SCHEME_TDES
        frame = self.session.dukpt_financial(kind, output, scheme=wire_scheme, amount=amount)
        self.save()
        return await self._exchange(kind, frame)

    async def mpos_financial_via_reader(
        self, kind: str, reader: tuple[str, int], card: CardFixture, *, amount: int, pin: PinEntry
    ) -> Outcome | None:
        """An MPOS purchase with the card reader as its own service (``acqsim reader serve``): the phone asks it
        to read ``card`` and builds the request from the KSN and ciphertexts it answers. Raises
        :class:`~terminal.readerd.client.ReaderUnreachable` / :class:`~wire.readerlink.ReaderLinkError`."""
        await self._ready()
        reading = await reader_link.read_card(*reader, card.pan, pin, timeout=self.timeout)
        output = ReaderOutput(ksn=reading.ksn, pin_block=reading.pin_block, track_data=reading.track)
        wire_scheme = SCHEME_AES if reading.scheme == DukptScheme.AES.value else SCHEME_TDES
        frame = self.session.dukpt_financial(kind, output, scheme=wire_scheme, amount=amount)
        self.save()
        return await self._exchange(kind, frame)

    async def settle(self) -> tuple[Outcome | None, SettlementTotals]:
        await self.send_pending_reversal()
        totals = self.session.totals()
        outcome = await self._exchange("settlement", self.session.settlement())
        if outcome is None or outcome.response_code != ResponseCode.APPROVED:
            return outcome, totals
        flags = SettlementTotals.parse(outcome.fields.get("48", "0" * 62))
        if flags.domestic.flag != "1" or flags.foreign.flag != "1":
            for frame in self.session.batch_uploads():
                await self._exchange("batch_upload", frame)
        self.session.close_batch()
        self.save()
        return outcome, totals

    async def send_raw(self, payload: bytes) -> bytes | None:
        """Send one frame payload exactly as given and return the answer's payload (``None``: no answer in time).

        No reversal is stored or sent, and the answer is not applied to the terminal's state: this is the
        message composer's way out (``acqsim send``, the web view's bad-MAC example).
        """
        return await self._send(payload)


def _issuer_answer(outcome: Outcome) -> IssuerAnswer | None:
    """The answer's 55 (91 and scripts); one that does not parse counts as a failed issuer authentication."""
    icc = outcome.fields.get("55")
    if not icc:
        return None
    try:
        return IssuerAnswer.parse(bytes.fromhex(icc))
    except (ValueError, MessageDecodeError) as exc:
        log.warning("answer 55 unreadable (%s): issuer authentication fails", exc)
        return IssuerAnswer(arpc=bytes(ARPC_LEN), arc="Z3")  # matches no ARPC: the card declines
