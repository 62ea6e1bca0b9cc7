"""A client for acqsim's TLV links (:mod:`wire.tlvlink`): one kept-open connection, one request at a time.

Used by the wallet host's client, the cash register and the merchant platform's client. Errors:

- :class:`LinkUnavailable`: connect refused, the connection lost before the answer, or an answer that does
  not decode; the next request opens a fresh connection.
- :class:`LinkTimeout`: no answer in time: the request may or may not have been carried out.
"""

from __future__ import annotations

import ssl
from types import TracebackType
from typing import Self

import anyio

from acqkit.netio import FramedConnection, connect
from wire.errors import FramingError, MessageDecodeError
from wire.tlvlink import LinkMessage, LinkSpec, decode_message, encode_message


class LinkError(Exception):
    """Base of a TLV-link client's errors."""


class LinkUnavailable(LinkError):
    """Could not reach the peer (refused, connection lost, an answer that does not decode)."""


class LinkTimeout(LinkError):
    """No answer in time: the request may or may not have been carried out."""


class TlvLinkClient:
    def __init__(
        self,
        host: str,
        port: int,
        link: LinkSpec,
        *,
        timeout: float,
        tls: ssl.SSLContext | None = None,
        server_name: str | None = None,
    ) -> None:
        self.host, self.port, self.link, self.timeout = host, port, link, timeout
        self.tls, self.server_name = tls, server_name
        self._conn: FramedConnection | None = None
        self._lock = anyio.Lock()

    @property
    def peer(self) -> str:
        return f"{self.link.name} peer at {self.host}:{self.port}"

    async def request(self, message: LinkMessage) -> LinkMessage:
        """Send ``message`` (checked against the link's spec first) and return the peer's answer."""
        payload = encode_message(message, self.link)
        async with self._lock:
            try:
                with anyio.fail_after(self.timeout):
                    if self._conn is None:
                        self._conn = await connect(
                            self.host, self.port, timeout=self.timeout, tls=self.tls, server_name=self.server_name
                        )
                    await self._conn.send(payload)
                    answer = await self._conn.receive()
            except TimeoutError:
                await self._drop()
                raise LinkTimeout(f"no answer from the {self.peer} in time") from None
            except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError, FramingError) as exc:
                await self._drop()
                raise LinkUnavailable(f"{self.peer}: {exc}") from None
            if answer is None:
                await self._drop()
                raise LinkUnavailable(f"the {self.peer} closed the connection")
            try:
                return decode_message(answer, self.link)
            except MessageDecodeError as exc:
                await self._drop()
                raise LinkUnavailable(f"undecodable answer from the {self.peer}: {exc}") from None

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
