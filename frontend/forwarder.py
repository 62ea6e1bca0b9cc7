"""Store-and-forward: the journal's pending reversals go to their host until each is acknowledged (the queue
lives in the journal, so it survives restarts): the ledger for an on-us card, the scheme switch for an off-us
one (the route of :mod:`frontend.routing`, by the reversal's card). What each ledger answer means is decided by
:func:`frontend.flows.faults.forward_verdict`; this loop only does the I/O."""

from __future__ import annotations

import logging
import sqlite3
from typing import Final

import anyio

from acqkit.metrics import REVERSALS_PENDING
from core_ledger.api import LedgerAnswer, LedgerRequest
from core_ledger.client import LedgerClient, LedgerTimeout, LedgerUnavailable
from frontend.flows.faults import ForwardVerdict, forward_verdict
from frontend.flows.qr import REVERSAL_DONE as WALLET_REVERSAL_DONE
from frontend.journal import MAX_REVERSAL_TRIES, Journal
from frontend.routing import Route, SchemeRoute, route_of
from merchant.client import MerchantClient, MerchantError
from scheme.client import SwitchLinkClient, SwitchLinkError, ledger_answer, switch_request
from wallet.client import WalletClient, WalletError
from wire.constants import ResponseCode
from wire.merchantlink import MERCHANT_LINK
from wire.tlvlink import decode_message
from wire.walletlink import WALLET_LINK

log = logging.getLogger("acqsim.frontend")

#: How often pending reversals are retried when nothing wakes the forwarder sooner.
REVERSAL_RETRY_S: Final = 1.0
#: The merchant platform's answer that ends a notice's store-and-forward.
NOTICE_DELIVERED: Final = ResponseCode.APPROVED


class ReversalForwarder:
    def __init__(
        self,
        journal: Journal,
        ledger: LedgerClient,
        *,
        scheme: SwitchLinkClient | None = None,
        route: SchemeRoute | None = None,
        wallet: WalletClient | None = None,
        merchant: MerchantClient | None = None,
    ) -> None:
        self.journal, self.ledger, self.wallet, self.merchant = journal, ledger, wallet, merchant
        self.scheme, self.route = scheme, route
        self._wakeup = anyio.Event()

    def wake(self) -> None:
        """A reversal was queued: forward it now rather than at the next retry."""
        self._wakeup.set()

    async def run(self) -> None:
        while True:
            with anyio.move_on_after(REVERSAL_RETRY_S):
                await self._wakeup.wait()
            self._wakeup = anyio.Event()
            try:
                await self.forward_pending()
                await self.forward_wallet_reversals()
                await self.forward_merchant_notices()
            except sqlite3.Error as exc:  # the queue stays in the journal: tried again on the next round
                log.error("cannot read or update the pending reversals: %s", exc)  # noqa: TRY400 - no payload

    async def forward_wallet_reversals(self) -> None:
        """QR reversals owed to the wallet host: until it answers 00 (undone) or 25 (never charged; the wallet
        then refuses the payment should it arrive late), however long the wallet host is down."""
        if self.wallet is None:
            return
        for reversal_id, text in await anyio.to_thread.run_sync(self.journal.pending_wallet_reversals):
            try:
                answer = await self.wallet.request(decode_message(text.encode("ascii"), WALLET_LINK))
            except WalletError:
                return
            if answer.result in WALLET_REVERSAL_DONE:
                await anyio.to_thread.run_sync(self.journal.wallet_reversal_done, reversal_id)
                log.info("QR reversal %d acknowledged by the wallet host", reversal_id)
            else:
                await anyio.to_thread.run_sync(self.journal.wallet_reversal_failed, reversal_id)
                log.warning("QR reversal %d answered %s by the wallet host: tried again", reversal_id, answer.result)

    async def forward_merchant_notices(self) -> None:
        """Settlement notices owed to the merchant platform, oldest first, until each is answered 00 (the
        platform keeps one notice per key, so a repeat after a lost answer is harmless); while it is down they
        wait in the journal, however long."""
        if self.merchant is None:
            return
        for notice_id, text in await anyio.to_thread.run_sync(self.journal.pending_merchant_notices):
            try:
                answer = await self.merchant.request(decode_message(text.encode("ascii"), MERCHANT_LINK))
            except MerchantError:
                return
            if answer.result == NOTICE_DELIVERED:
                await anyio.to_thread.run_sync(self.journal.merchant_notice_done, notice_id)
                log.info("settlement notice %d delivered to the merchant platform", notice_id)
            else:
                await anyio.to_thread.run_sync(self.journal.merchant_notice_failed, notice_id)
                log.warning("settlement notice %d answered %s by the merchant platform", notice_id, answer.result)

    async def forward_pending(self) -> None:
        pending = await anyio.to_thread.run_sync(self.journal.pending_reversals)
        REVERSALS_PENDING.labels(service="frontend").set(len(pending))
        for reversal_id, request in pending:
            stan = request.original.stan if request.original else request.stan
            try:
                answer = await self._send(request)
            except (LedgerTimeout, LedgerUnavailable, SwitchLinkError):
                # Not a refusal: store-and-forward waits out an unreachable ledger however long it takes (each
                # failure is logged by the client); only the ledger's own answers count towards a dead letter.
                return
            code = answer.response_code
            verdict = forward_verdict(code)
            if verdict is ForwardVerdict.DONE:
                await anyio.to_thread.run_sync(self.journal.reversal_done, reversal_id)
                log.info("reversal of STAN %s acknowledged by the ledger", stan)
            elif verdict is ForwardVerdict.TRY_AGAIN:
                dead = await anyio.to_thread.run_sync(self.journal.reversal_failed, reversal_id, code.value)
                if dead:
                    log.error("reversal of STAN %s given up after %d tries: a dead letter", stan, MAX_REVERSAL_TRIES)
            else:
                await anyio.to_thread.run_sync(self.journal.reversal_dead, reversal_id, code.value)
                log.error("reversal of STAN %s refused by the ledger with %s: a dead letter", stan, code.value)

    async def _send(self, request: LedgerRequest) -> LedgerAnswer:
        if self.scheme is not None and route_of(self.route, request.pan) is Route.SCHEME:
            return ledger_answer(await self.scheme.exchange(switch_request(request).fields()), request.rrn)
        return await self.ledger.submit(request)
