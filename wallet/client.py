"""How others talk to the wallet host (the front-end for terminals, the wallet app for consumers).

:class:`WalletClient` is a :class:`~acqkit.tlvclient.TlvLinkClient` on the wallet link. Errors are the
runtime's (:class:`WalletError` and its two kinds are their names here):

- :class:`WalletUnavailable`: connect refused, connection lost, an answer that does not decode.
- :class:`WalletTimeout`: no answer in time. The wallet may or may not have charged: a merchant-side caller
  reverses (``REVS`` with the same ``TI ST DT``), which is safe either way.
"""

from __future__ import annotations

import ssl
from typing import Final

from acqkit.config import DEFAULT_WALLET_PORT, Endpoint
from acqkit.tlvclient import LinkError, LinkTimeout, LinkUnavailable, TlvLinkClient
from wire.walletlink import WALLET_LINK

WALLET_TIMEOUT_S: Final = 5.0
WALLET_SERVICE_NAME: Final = "wallet"
#: Where it listens unless told otherwise (acqkit/config.py).
DEFAULT_WALLET: Final = Endpoint(host="127.0.0.1", port=DEFAULT_WALLET_PORT)

WalletError = LinkError
WalletUnavailable = LinkUnavailable
WalletTimeout = LinkTimeout


class WalletClient(TlvLinkClient):
    def __init__(
        self, host: str, port: int, *, timeout: float = WALLET_TIMEOUT_S, tls: ssl.SSLContext | None = None
    ) -> None:
        super().__init__(host, port, WALLET_LINK, timeout=timeout, tls=tls, server_name=WALLET_SERVICE_NAME)
