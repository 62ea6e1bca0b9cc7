"""Thin anyio shell: the host-link server around :class:`core_ledger.service.LedgerService`.

Each connection is served in its own task, and each request on it in its own task too (up to
``MAX_IN_FLIGHT_PER_CONNECTION`` at once), so requests pipelined on one connection share a group commit;
answers go back as they become durable, not in request order (the client matches them by MTI class, 32, 41,
11, 13). A frame that does not decode as ISO 8583 closes that connection once its requests in flight are
answered (the stream cannot be trusted); a message that decodes but lacks what the operation needs is
answered 30 (format error).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Final

import anyio
import anyio.abc

from acqkit.netio import FramedConnection, acquire_slot, serve_tcp
from acqkit.serving import PLAIN, Serving
from core_ledger.api import LedgerAnswer
from core_ledger.engine import LedgerEngine
from core_ledger.hostlink import answer_fields, request_from_fields
from core_ledger.service import LedgerService
from core_ledger.store import LedgerStore
from wire.codec import Fields, decode_host, encode_host
from wire.constants import ResponseCode
from wire.errors import MessageDecodeError, MessageEncodeError
from wire.trace import TraceWriter, correlation_id

log = logging.getLogger("acqsim.ledger")

#: A connection silent this long is closed.
IDLE_TIMEOUT_S: Final = 600.0
#: Longest an answer may wait for the peer to take it (a peer that stops reading loses its connection).
SEND_TIMEOUT_S: Final = 10.0
#: Requests one connection may have in flight; the reader waits for a free slot before reading more.
MAX_IN_FLIGHT_PER_CONNECTION: Final = 256


def _encode_answer(fields: Fields, answer: LedgerAnswer) -> bytes:
    """The answer's bytes; balances that do not fit field 54 are left out rather than losing the answer (the
    decision is already durable, so the caller must hear it)."""
    try:
        return encode_host(answer_fields(fields, answer))
    except (MessageEncodeError, MessageDecodeError) as exc:
        log.warning("answer without field 54: %s", exc)
        return encode_host(answer_fields(fields, dataclasses.replace(answer, balance=None, available=None)))


async def serve(
    host: str,
    port: int,
    *,
    service: LedgerService | None = None,
    store: LedgerStore | None = None,
    trace: TraceWriter | None = None,
    serving: Serving = PLAIN,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the host link on ``host:port`` until cancelled; ``task_status.started(port)`` gives the bound port.

    Pass a ready ``service``, or a ``store`` (the service is then built over what the store holds).
    """
    if (service is None) == (store is None):
        raise TypeError("serve() needs exactly one of service= or store=")
    if service is None:
        assert store is not None
        loaded = await anyio.to_thread.run_sync(store.load)
        service = LedgerService(store, LedgerEngine(loaded))
    ledger = service
    tracer = trace if trace is not None and trace.enabled else None

    async def answer(conn: FramedConnection, fields: Fields, slot: anyio.Semaphore) -> None:
        try:
            try:
                request = request_from_fields(fields)
            except (MessageDecodeError, ValueError) as exc:
                log.info("format error from %s: %s", conn.peer, exc)
                answer = LedgerAnswer(response_code=ResponseCode.FORMAT_ERROR, rrn=fields.get("37", " " * 12))
            else:
                answer = await ledger.submit(request)
            encoded = _encode_answer(fields, answer)
            if tracer is not None:
                cid = correlation_id(fields.get("41", "?"), fields.get("11", "?"))
                tracer.record(
                    direction="out",
                    link="host",
                    peer=conn.peer,
                    payload=encoded,
                    correlation_id=cid,
                    note=answer.response_code.value,
                )
            with anyio.fail_after(SEND_TIMEOUT_S):
                await conn.send(encoded)
        finally:
            slot.release()

    async def handle(conn: FramedConnection) -> None:
        slot = anyio.Semaphore(MAX_IN_FLIGHT_PER_CONNECTION)
        async with anyio.create_task_group() as requests:
            while True:
                await acquire_slot(slot)
                payload = await conn.receive(IDLE_TIMEOUT_S)
                if payload is None:
                    return
                try:
                    fields = decode_host(payload)
                except MessageDecodeError as exc:
                    log.warning("closing %s: undecodable host message: %s", conn.peer, exc)
                    return
                if tracer is not None:
                    cid = correlation_id(fields.get("41", "?"), fields.get("11", "?"))
                    tracer.record(direction="in", link="host", peer=conn.peer, payload=payload, correlation_id=cid)
                requests.start_soon(answer, conn, fields, slot)

    async with anyio.create_task_group() as tg:
        await tg.start(ledger.run_flusher)
        await serve_tcp(
            host,
            port,
            handle,
            name="ledger",
            max_connections=serving.max_connections,
            tls=serving.server_tls,
            task_status=task_status,
        )
