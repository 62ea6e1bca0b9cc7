"""The I/O shell of a TLV-link host (the wallet host, the merchant platform): one decision at a time.

A host's core is sans-IO: ``decide(message, now)`` returns the answer and the records it changes. This shell
reads a frame, decodes it against the link's spec (a frame that does not decode is answered ``ERRR`` — 30,
naming tag and offset — and the connection carries on), then, under a lock: decides, commits the records in
one store transaction (in a worker thread, shielded: a cancel cannot split a commit from its answer), applies
them to the core's memory, answers. If the store fails the host stops deciding: every later request is
answered 96, so nothing is done that is not durable. Only a framing error closes a connection. A host given
``txn_fields`` logs one ``acqsim.txn`` record per decoded request (docs/logging.md).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, Protocol, TypeAlias

import anyio
import anyio.abc

from acqkit import txnlog
from acqkit.dedicated import DedicatedThread
from acqkit.netio import FramedConnection, serve_tcp
from acqkit.serving import PLAIN, Serving
from wire.errors import MessageDecodeError
from wire.tlvlink import LinkMessage, LinkSpec, decode_message, encode_message, error_answer

log = logging.getLogger("acqsim.tlvhost")

#: A connection silent this long is closed.
IDLE_TIMEOUT_S: Final = 600.0
#: Longest an answer may wait for the peer to take it.
SEND_TIMEOUT_S: Final = 10.0
SYSTEM_MALFUNCTION: Final = "96"


#: What a host shows of one decision in its ``acqsim.txn`` record, from (request, answer): named fields, each
#: masked or left out where it is a secret (payment and voucher codes masked; passwords never).
TxnFields: TypeAlias = Callable[[LinkMessage, LinkMessage], Mapping[str, str | None]]


class Decided(Protocol):
    @property
    def answer(self) -> LinkMessage: ...
    @property
    def records(self) -> Sequence[Any]: ...


class Core(Protocol):
    def decide(self, message: LinkMessage, now: float) -> Decided: ...
    def apply(self, records: Sequence[Any]) -> None: ...


class Store(Protocol):
    def commit(self, records: Any) -> None: ...


class TlvHost:
    def __init__(
        self,
        link: LinkSpec,
        core: Core,
        store: Store,
        *,
        store_errors: tuple[type[Exception], ...],
        clock: Callable[[], float] = time.time,
        service: str = "",
        txn_fields: TxnFields | None = None,
    ) -> None:
        """With ``txn_fields``, each decided request gets one ``acqsim.txn`` record as ``service`` (its kind, the
        result and what ``txn_fields`` shows; ``txn`` from ``TI`` and ``ST`` when it has both)."""
        self.link, self.core, self.store = link, core, store
        self.service, self.txn_fields = service, txn_fields
        self.store_errors = store_errors
        self.clock = clock
        self.failed = False
        self._lock = anyio.Lock()
        #: Commits go to one thread of their own (a fraction of ``to_thread``'s cost per hand-over).
        self._committer = DedicatedThread(f"{link.name}-commit")

    def stop(self) -> None:
        """Let the commit thread end (it starts again if the host is used again)."""
        self._committer.stop()

    async def respond(self, payload: bytes) -> LinkMessage:
        message, answer = await self._decide(payload)
        if message is not None and self.txn_fields is not None and txnlog.enabled():
            txnlog.log_transaction(
                self.service,
                txnlog.link_txn(message.get("TI"), message.get("ST")),
                kind=message.kind,
                code=answer.result,
                **self.txn_fields(message, answer),
            )
        return answer

    async def _decide(self, payload: bytes) -> tuple[LinkMessage | None, LinkMessage]:
        """The request (``None`` if it did not decode) and its answer."""
        try:
            message = decode_message(payload, self.link)
        except MessageDecodeError as exc:
            log.info("unreadable %s request: %s", self.link.name, exc)
            return None, error_answer(exc)
        if message.is_answer:
            return None, error_answer(MessageDecodeError("an answer sent as a request", field="RC"))
        refusal = await self.admit(message)
        if refusal is not None:
            return message, refusal
        async with self._lock:
            if self.failed:
                return message, message.answer(SYSTEM_MALFUNCTION, TX="store failed: not deciding")
            decision = self.core.decide(message, self.clock())
            records = tuple(decision.records)
            try:
                await self._committer.run(self.store.commit, records)  # shielded: a started commit finishes
            except self.store_errors:
                self.failed = True
                log.exception("%s store failed: no more decisions", self.link.name)
                return message, message.answer(SYSTEM_MALFUNCTION, TX="store failed: not deciding")
            self.core.apply(records)
        return message, decision.answer

    async def admit(self, message: LinkMessage) -> LinkMessage | None:
        """A host that authenticates requests refuses one here (the answer), before anything is decided;
        ``None`` lets it through. This base admits every request."""
        return None

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
                await conn.send(encode_message(answer, self.link))


async def serve_tlv(
    host: str,
    port: int,
    *,
    tlv_host: TlvHost,
    name: str,
    serving: Serving = PLAIN,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``tlv_host`` on ``host:port`` until cancelled; ``task_status.started(port)``."""
    try:
        await serve_tcp(
            host,
            port,
            functools.partial(TlvHost.handle, tlv_host),
            name=name,
            max_connections=serving.max_connections,
            tls=serving.server_tls,
            task_status=task_status,
        )
    finally:
        tlv_host.stop()
