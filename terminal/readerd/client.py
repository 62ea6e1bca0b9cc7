"""The phone's side of the reader link (:mod:`wire.readerlink`): one request, one answer, within a deadline."""

from __future__ import annotations

from typing import Any, Final

from acqkit.netio import connect
from wire.readerlink import (
    MAX_FRAME_LEN,
    LinkError,
    LoadKeys,
    PinEntry,
    ReadCard,
    ReaderLinkError,
    Reading,
    Request,
    Status,
    encode_request,
    parse_answer,
    parse_reading,
)

#: How long the phone waits for the reader (connect and answer).
READER_TIMEOUT_S: Final = 5.0


class ReaderUnreachable(Exception):
    """Nothing answered at the reader's address in time."""


async def _call(host: str, port: int, request: Request, timeout: float) -> bytes:
    try:
        conn = await connect(host, port, timeout=timeout, max_frame_len=MAX_FRAME_LEN)
    except (OSError, TimeoutError) as exc:
        raise ReaderUnreachable(f"no reader at {host}:{port} ({type(exc).__name__})") from None
    try:
        await conn.send(encode_request(request))
        answer = await conn.receive(timeout)
    except (OSError, TimeoutError) as exc:
        raise ReaderUnreachable(f"the reader at {host}:{port} did not answer ({type(exc).__name__})") from None
    finally:
        await conn.aclose()
    if answer is None:
        raise ReaderUnreachable(f"the reader at {host}:{port} closed the link")
    return answer


async def read_card(host: str, port: int, card: str, pin: PinEntry, *, timeout: float = READER_TIMEOUT_S) -> Reading:
    """Swipe ``card`` at the reader; raises :class:`ReaderLinkError` when it refuses."""
    return parse_reading(await _call(host, port, ReadCard(card, pin), timeout))


async def reader_status(host: str, port: int, *, timeout: float = READER_TIMEOUT_S) -> dict[str, Any]:
    return parse_answer(await _call(host, port, Status(), timeout))


async def load_keys(host: str, port: int, keys: LoadKeys, *, timeout: float = READER_TIMEOUT_S) -> dict[str, Any]:
    return parse_answer(await _call(host, port, keys, timeout))


__all__ = [
    "READER_TIMEOUT_S",
    "LinkError",
    "ReaderLinkError",
    "ReaderUnreachable",
    "load_keys",
    "read_card",
    "reader_status",
]
