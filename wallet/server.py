"""Thin anyio shell: the wallet link served around :class:`wallet.core.WalletCore`.

One decision at a time (a lock): decide, commit its records in one store transaction (in a worker thread,
shielded, so a cancel cannot split a commit from its answer), apply them to the book, answer. A frame that
does not decode is answered ``ERRR`` (30, naming tag and offset) and the connection carries on; only a
framing error (the stream is out of step) closes it. If the store fails, the host stops deciding: every
later request is answered 96 (nothing is charged that is not durable).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Final

import anyio
import anyio.abc

from acqkit.netio import FramedConnection, serve_tcp
from acqkit.serving import PLAIN, Serving
from wallet.core import WalletCore
from wallet.seed import seed_accounts
from wallet.store import WalletStore, WalletStoreError
from wire.constants import ResponseCode
from wire.errors import MessageDecodeError
from wire.tlvlink import LinkMessage, decode_message, encode_message, error_answer
from wire.walletlink import WALLET_LINK

log = logging.getLogger("acqsim.wallet")

#: A connection silent this long is closed.
IDLE_TIMEOUT_S: Final = 600.0
#: Longest an answer may wait for the peer to take it.
SEND_TIMEOUT_S: Final = 10.0


class WalletHost:
    """The core, its store, and the lock that makes decisions one at a time."""

    def __init__(self, store: WalletStore, *, clock: Callable[[], float] = time.time, seed: bool = True) -> None:
        self.store = store
        book = store.load()
        if seed:
            opening = seed_accounts(book)
            store.commit(opening)
            book.apply(opening)
        self.core = WalletCore(book)
        self.clock = clock
        self.failed = False
        self._lock = anyio.Lock()

    async def respond(self, payload: bytes) -> LinkMessage:
        try:
            message = decode_message(payload, WALLET_LINK)
        except MessageDecodeError as exc:
            log.info("unreadable wallet-link request: %s", exc)
            return error_answer(exc)
        if message.is_answer:
            return error_answer(MessageDecodeError("an answer sent as a request", field="RC"))
        async with self._lock:
            if self.failed:
                return message.answer(ResponseCode.SYSTEM_MALFUNCTION, TX="wallet store failed")
            decision = self.core.decide(message, self.clock())
            try:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(self.store.commit, decision.records)
            except WalletStoreError:
                self.failed = True
                log.exception("wallet store failed: no more decisions")
                return message.answer(ResponseCode.SYSTEM_MALFUNCTION, TX="wallet store failed")
            self.core.book.apply(decision.records)
        return decision.answer

    async def handle(self, conn: FramedConnection) -> None:
        while True:
            try:
                payload = await conn.receive(IDLE_TIMEOUT_S)
            except TimeoutError:
                return
            if payload is None:
                return
            answer = await self.respond(payload)
            with anyio.fail_after(SEND_TIMEOUT_S):
                await conn.send(encode_message(answer, WALLET_LINK))


async def serve(
    host: str,
    port: int,
    *,
    wallet: WalletHost,
    serving: Serving = PLAIN,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the wallet link on ``host:port`` until cancelled; ``task_status.started(port)``."""
    await serve_tcp(
        host,
        port,
        functools.partial(WalletHost.handle, wallet),
        name="wallet",
        max_connections=serving.max_connections,
        tls=serving.server_tls,
        task_status=task_status,
    )
