"""anyio client of the core ledger for the front-end: ``submit(LedgerRequest) -> LedgerAnswer``.

One TCP connection carries many requests at once (:class:`acqkit.multiplex.MultiplexedLink`): each answer is
matched to its request by the host-link match key (MTI class, 32, 37: the transaction itself; see
:func:`core_ledger.hostlink.match_key`).

Errors (both ``LedgerError``):

- :class:`LedgerUnavailable`: connect refused, or the connection was lost before the answer came. The
  next call opens a fresh connection (a restarted ledger is picked up again).
- :class:`LedgerTimeout`: no answer within the timeout. The ledger may or may not have posted: the caller
  sends a reversal.

An answer that does not decode ends the connection (the stream cannot be trusted): every caller waiting on it
gets ``LedgerUnavailable``.
"""

from __future__ import annotations

import ssl
from types import TracebackType
from typing import Final, Self

import anyio

from acqkit.multiplex import LinkLost, PeerLink
from core_ledger.api import LedgerAnswer, LedgerRequest
from core_ledger.hostlink import answer_from_fields, match_key, request_fields
from wire.codec import decode_host, encode_host
from wire.errors import FramingError, MessageDecodeError

#: Default time for one request, connecting included.
LEDGER_TIMEOUT_S: Final = 5.0
#: The name the ledger's TLS certificate must carry.
LEDGER_SERVICE_NAME: Final = "ledger"

MatchKey = tuple[str, str, str]


class LedgerError(Exception):
    """Base of the ledger client's errors."""


class LedgerUnavailable(LedgerError):
    """Could not reach the ledger (refused, connection lost)."""


class LedgerTimeout(LedgerError):
    """No answer in time: the request may or may not have been posted."""


def host_message(request: LedgerRequest) -> bytes:
    """``request`` as the host-link message the client sends (PROTOCOL.md §2): for a caller's trace."""
    return encode_host(request_fields(request))


def _decode_answer(payload: bytes) -> tuple[MatchKey, LedgerAnswer]:
    try:
        fields = decode_host(payload)
        answer = answer_from_fields(fields)
    except MessageDecodeError as exc:
        raise FramingError(f"undecodable answer from the ledger: {exc}", kind="undecodable") from None
    return match_key(fields), answer


class LedgerClient:
    def __init__(
        self, host: str, port: int, *, timeout: float = LEDGER_TIMEOUT_S, tls: ssl.SSLContext | None = None
    ) -> None:
        """With ``tls`` (a client context of :mod:`acqkit.tls`), the ledger must prove it is ``ledger``."""
        self.host, self.port = host, port
        self.timeout = timeout
        self._peer: PeerLink[MatchKey, LedgerAnswer] = PeerLink(
            host, port, _decode_answer, what="ledger", timeout=timeout, tls=tls, server_name=LEDGER_SERVICE_NAME
        )

    @classmethod
    async def connect(
        cls, host: str, port: int, *, timeout: float = LEDGER_TIMEOUT_S, tls: ssl.SSLContext | None = None
    ) -> LedgerClient:
        """A client with its connection open (raises :class:`LedgerUnavailable` if the ledger is down)."""
        client = cls(host, port, timeout=timeout, tls=tls)
        try:
            with anyio.fail_after(timeout):
                await client._peer.open()
        except TimeoutError:
            raise LedgerUnavailable(f"{host}:{port}: connect timed out") from None
        except LinkLost as exc:
            raise LedgerUnavailable(str(exc)) from None
        return client

    async def submit(self, request: LedgerRequest, *, timeout: float | None = None) -> LedgerAnswer:
        """Send ``request`` and wait for its answer (``timeout`` defaults to the client's).

        If a connection opened earlier turns out to be dead, the request is sent once more on a fresh one:
        that is safe because the ledger answers a repeated key with its first answer and never posts twice.
        """
        fields = request_fields(request)
        key = match_key(fields)
        try:
            with anyio.fail_after(self.timeout if timeout is None else timeout):
                [answer] = await self._peer.exchange_many([(key, encode_host(fields))])
        except TimeoutError:
            raise LedgerTimeout(f"no answer from the ledger at {self.host}:{self.port} in time") from None
        except LinkLost as exc:
            raise LedgerUnavailable(str(exc)) from None
        return answer

    async def aclose(self) -> None:
        await self._peer.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
