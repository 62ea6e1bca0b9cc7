"""anyio client of the core ledger for the front-end: ``submit(LedgerRequest) -> LedgerAnswer``.

Requests share a pool of connections (one request in flight per connection); every call has a timeout.
``LedgerTimeout`` means the ledger may or may not have posted: the caller must send a reversal.
"""

from __future__ import annotations

from types import TracebackType
from typing import Final, Self

from acqsim.netio import ConnectionPool, PoolUnavailableError
from core_ledger.api import LedgerAnswer, LedgerRequest
from core_ledger.hostlink import answer_from_fields, match_key, request_fields
from wire.codec import decode_host, encode_host
from wire.errors import MessageDecodeError

LEDGER_TIMEOUT_S: Final = 5.0
MAX_CONNECTIONS: Final = 32


class LedgerUnavailable(Exception):
    """Could not reach the ledger (refused, connection lost)."""


class LedgerTimeout(Exception):
    """No answer in time: the request may or may not have been posted."""


class LedgerProtocolError(Exception):
    """The ledger's answer does not decode or does not match the request."""


class LedgerClient:
    def __init__(self, host: str, port: int, *, timeout: float = LEDGER_TIMEOUT_S) -> None:
        self.timeout = timeout
        self._pool = ConnectionPool(host, port, max_connections=MAX_CONNECTIONS)

    @classmethod
    async def connect(cls, host: str, port: int, *, timeout: float = LEDGER_TIMEOUT_S) -> LedgerClient:
        client = cls(host, port, timeout=timeout)
        try:
            await client._pool.warm_up(timeout)
        except PoolUnavailableError as exc:
            raise LedgerUnavailable(str(exc)) from None
        return client

    async def submit(self, request: LedgerRequest, *, timeout: float | None = None) -> LedgerAnswer:
        fields = request_fields(request)
        try:
            raw = await self._pool.request(encode_host(fields), self.timeout if timeout is None else timeout)
        except PoolUnavailableError as exc:
            if exc.reason == "timed out":
                raise LedgerTimeout(str(exc)) from None
            raise LedgerUnavailable(str(exc)) from None
        try:
            answer_fields = decode_host(raw)
        except MessageDecodeError as exc:
            raise LedgerProtocolError(str(exc)) from None
        if match_key(answer_fields) != match_key(fields):
            raise LedgerProtocolError("answer does not match the request (32, 41, 11, 13)")
        return answer_from_fields(answer_fields)

    async def aclose(self) -> None:
        await self._pool.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
