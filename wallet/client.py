"""anyio client of the wallet host: ``request(LinkMessage) -> LinkMessage`` (the front-end, the wallet app).

One connection, kept open, one request at a time on it. Errors (both :class:`WalletError`):

- :class:`WalletUnavailable`: connect refused, or the connection was lost before the answer came; the next
  request opens a fresh connection.
- :class:`WalletTimeout`: no answer in time. The wallet may or may not have charged: a merchant-side caller
  reverses (``REVS`` with the same ``TI ST DT``), which is safe either way.
"""

from __future__ import annotations

import ssl
from types import TracebackType
from typing import Final, Self

import anyio

from acqkit.netio import FramedConnection, connect
from wire.errors import FramingError, MessageDecodeError
from wire.tlvlink import LinkMessage, decode_message, encode_message
from wire.walletlink import WALLET_LINK

WALLET_TIMEOUT_S: Final = 5.0
WALLET_SERVICE_NAME: Final = "wallet"


class WalletError(Exception):
    """Base of the wallet client's errors."""


class WalletUnavailable(WalletError):
    """Could not reach the wallet host (refused, connection lost, an answer that does not decode)."""


class WalletTimeout(WalletError):
    """No answer in time: the request may or may not have been carried out."""


class WalletClient:
    def __init__(
        self, host: str, port: int, *, timeout: float = WALLET_TIMEOUT_S, tls: ssl.SSLContext | None = None
    ) -> None:
        self.host, self.port, self.timeout, self.tls = host, port, timeout, tls
        self._conn: FramedConnection | None = None
        self._lock = anyio.Lock()

    async def request(self, message: LinkMessage) -> LinkMessage:
        """Send ``message`` and return the wallet host's answer."""
        payload = encode_message(message, WALLET_LINK)
        async with self._lock:
            try:
                with anyio.fail_after(self.timeout):
                    if self._conn is None:
                        self._conn = await connect(
                            self.host, self.port, timeout=self.timeout, tls=self.tls, server_name=WALLET_SERVICE_NAME
                        )
                    await self._conn.send(payload)
                    answer = await self._conn.receive()
            except TimeoutError:
                await self._drop()
                raise WalletTimeout(f"no answer from the wallet host at {self.host}:{self.port} in time") from None
            except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError, FramingError) as exc:
                await self._drop()
                raise WalletUnavailable(f"wallet host at {self.host}:{self.port}: {exc}") from None
            if answer is None:
                await self._drop()
                raise WalletUnavailable(f"wallet host at {self.host}:{self.port} closed the connection")
            try:
                return decode_message(answer, WALLET_LINK)
            except MessageDecodeError as exc:
                await self._drop()
                raise WalletUnavailable(f"undecodable answer from the wallet host: {exc}") from None

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with anyio.CancelScope(shield=True):
                await conn.aclose()

    async def aclose(self) -> None:
        await self._drop()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
