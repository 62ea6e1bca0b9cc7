"""How terminals, tills and the back office talk to the merchant platform: a
:class:`~acqkit.tlvclient.TlvLinkClient` on the merchant link (errors: ``MerchantUnavailable``,
``MerchantTimeout``, both ``MerchantError``). Given a :class:`LinkSigner` (the terminal's key id and its
merchant-link key, as a terminal holds its keys) it signs every request (docs/smartpos.md, "Authentication")."""

from __future__ import annotations

import dataclasses
import secrets
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Final

from acqkit.config import DEFAULT_MERCHANT_PORT, Endpoint
from acqkit.tlvclient import LinkError, LinkTimeout, LinkUnavailable, TlvLinkClient
from wire.merchantlink import MERCHANT_LINK, NONCE_HEX_LEN, sign
from wire.tlvlink import LinkMessage

MERCHANT_TIMEOUT_S: Final = 5.0
MERCHANT_SERVICE_NAME: Final = "merchant"
#: Where it listens unless told otherwise (acqkit/config.py).
DEFAULT_MERCHANT: Final = Endpoint(host="127.0.0.1", port=DEFAULT_MERCHANT_PORT)
#: The key store's label of a terminal's merchant-link key (a cryptogram under the LMK, type HMK).
LINK_KEY_PREFIX: Final = "mlk/"

MerchantError = LinkError
MerchantUnavailable = LinkUnavailable
MerchantTimeout = LinkTimeout
#: Signs one request (for a signer whose key lives in the HSM, an awaitable; see :class:`LinkSigner`).
Signer = Callable[[LinkMessage], Awaitable[LinkMessage]]


def link_key_label(terminal_id: str) -> str:
    return f"{LINK_KEY_PREFIX}{terminal_id}"


def fresh_nonce() -> str:
    return secrets.token_hex(NONCE_HEX_LEN // 2).upper()


@dataclasses.dataclass(frozen=True, slots=True)
class LinkSigner:
    """A terminal's signing material: its id and its clear merchant-link key (held as it holds its TMK)."""

    key_id: str
    key: bytes = dataclasses.field(repr=False)
    clock: Callable[[], float] = time.time

    async def __call__(self, message: LinkMessage) -> LinkMessage:
        return sign(message, key_id=self.key_id, key=self.key, now=self.clock(), nonce=fresh_nonce())


class MerchantClient(TlvLinkClient):
    def __init__(
        self,
        host: str,
        port: int,
        *,
        timeout: float = MERCHANT_TIMEOUT_S,
        tls: ssl.SSLContext | None = None,
        signer: Signer | None = None,
    ) -> None:
        super().__init__(host, port, MERCHANT_LINK, timeout=timeout, tls=tls, server_name=MERCHANT_SERVICE_NAME)
        self.signer = signer

    async def request(self, message: LinkMessage) -> LinkMessage:
        """Send ``message`` — signed afresh (new time and nonce) when the client has a signer."""
        if self.signer is not None:
            message = await self.signer(message)
        return await super().request(message)
