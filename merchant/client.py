"""How terminals, tills and the back office talk to the merchant platform: a
:class:`~acqkit.tlvclient.TlvLinkClient` on the merchant link (errors: ``MerchantUnavailable``,
``MerchantTimeout``, both ``MerchantError``)."""

from __future__ import annotations

import ssl
from typing import Final

from acqkit.config import DEFAULT_MERCHANT_PORT, Endpoint
from acqkit.tlvclient import LinkError, LinkTimeout, LinkUnavailable, TlvLinkClient
from wire.merchantlink import MERCHANT_LINK

MERCHANT_TIMEOUT_S: Final = 5.0
MERCHANT_SERVICE_NAME: Final = "merchant"
#: Where it listens unless told otherwise (acqkit/config.py).
DEFAULT_MERCHANT: Final = Endpoint(host="127.0.0.1", port=DEFAULT_MERCHANT_PORT)

MerchantError = LinkError
MerchantUnavailable = LinkUnavailable
MerchantTimeout = LinkTimeout


class MerchantClient(TlvLinkClient):
    def __init__(
        self, host: str, port: int, *, timeout: float = MERCHANT_TIMEOUT_S, tls: ssl.SSLContext | None = None
    ) -> None:
        super().__init__(host, port, MERCHANT_LINK, timeout=timeout, tls=tls, server_name=MERCHANT_SERVICE_NAME)
