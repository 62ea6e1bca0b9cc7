"""Thin anyio shell: the host-link server around :class:`core_ledger.service.LedgerService`.

Each connection is served in its own task; requests on one connection are answered in order. A frame that
does not decode as ISO 8583 closes that connection (the stream cannot be trusted); a message that decodes
but lacks what the operation needs is answered 30 (format error).
"""

from __future__ import annotations

import logging
from typing import Final

import anyio
import anyio.abc

from acqsim.netio import FramedConnection, serve_tcp
from core_ledger.api import LedgerAnswer
from core_ledger.hostlink import answer_fields, request_from_fields
from core_ledger.service import LedgerService
from wire.codec import decode_host, encode_host
from wire.constants import ResponseCode
from wire.errors import MessageDecodeError

log = logging.getLogger("acqsim.ledger")

IDLE_TIMEOUT_S: Final = 600.0


async def serve(
    host: str,
    port: int,
    *,
    service: LedgerService,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    async def handle(conn: FramedConnection) -> None:
        while (payload := await conn.receive(IDLE_TIMEOUT_S)) is not None:
            try:
                fields = decode_host(payload)
            except MessageDecodeError as exc:
                log.warning("closing %s: undecodable host message: %s", conn.peer, exc)
                return
            try:
                request = request_from_fields(fields)
            except (MessageDecodeError, ValueError) as exc:
                log.info("format error from %s: %s", conn.peer, exc)
                answer = LedgerAnswer(response_code=ResponseCode.FORMAT_ERROR, rrn=fields.get("37", " " * 12))
            else:
                answer = await service.submit(request)
            await conn.send(encode_host(answer_fields(fields, answer)))

    async with anyio.create_task_group() as tg:
        await tg.start(service.run_flusher)
        await serve_tcp(host, port, handle, name="ledger", task_status=task_status)
