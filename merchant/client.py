"""How terminals, tills and the back office talk to the merchant platform: a
:class:`~acqkit.tlvclient.TlvLinkClient` on the merchant link (errors: ``MerchantUnavailable``,
``MerchantTimeout``, both ``MerchantError``). Given a :class:`LinkSigner` (the terminal's key id and its
merchant-link key, as a terminal holds its keys) it signs every request (docs/smartpos.md, "Authentication")."""

from __future__ import annotations

import dataclasses
import secrets
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Final

from acqkit.config import DEFAULT_MERCHANT_PORT, AcqsimConfig, Endpoint
from acqkit.keystore import KeyStore
from acqkit.tlvclient import LinkError, LinkTimeout, LinkUnavailable, TlvLinkClient
from hsm_sim.client import HsmClient, HsmError, KeyType
from wire.merchantlink import (
    LINK_MAC,
    MERCHANT_LINK,
    NONCE_HEX_LEN,
    derive_test_link_key,
    sign,
    signing_bytes,
    stamped,
    with_mac,
)
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


def link_keys(store: KeyStore) -> dict[str, str]:
    """Key id (terminal id) → its merchant-link key's cryptogram, from the key store's ``mlk/…`` entries."""
    return {
        label.removeprefix(LINK_KEY_PREFIX): entry.cryptogram
        for label, entry in store.entries.items()
        if label.startswith(LINK_KEY_PREFIX)
    }


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


def terminal_signer(config: AcqsimConfig, terminal_id: str | None = None) -> LinkSigner:
    """The signer of a configured terminal (default: the first), its key from its TEST TMK as the key ceremony
    derives it (:func:`wire.merchantlink.derive_test_link_key`): TEST material, as the terminal's TMK is."""
    wanted = terminal_id or config.terminals[0].terminal_id
    terminal = next((t for t in config.terminals if t.terminal_id == wanted), None)
    if terminal is None:
        raise ValueError(f"terminal {wanted} is not configured: no merchant-link key to sign with")
    return LinkSigner(terminal.terminal_id, derive_test_link_key(terminal.tmk))


class HsmLinkSigner:
    """Signs as the terminal a request names (``TI``), its key a cryptogram under the LMK that the HSM MACs
    with (M6, HMAC-SHA-256/64): how the front-end, which holds no clear key, signs the notices it pushes for a
    terminal. A request for a terminal without a key goes unsigned (the platform refuses it, S1); an HSM that
    fails makes the request :class:`MerchantUnavailable` (store-and-forward tries again)."""

    def __init__(self, hsm: HsmClient, keys: Mapping[str, str], *, clock: Callable[[], float] = time.time) -> None:
        self.hsm, self.keys, self.clock = hsm, dict(keys), clock

    async def __call__(self, message: LinkMessage) -> LinkMessage:
        key_id = message.get("TI") or ""
        cryptogram = self.keys.get(key_id)
        if cryptogram is None:
            return message
        unsigned = stamped(message, key_id=key_id, now=self.clock(), nonce=fresh_nonce())
        try:
            mac = await self.hsm.generate_mac(KeyType.HMK, cryptogram, signing_bytes(unsigned), LINK_MAC)
        except HsmError as exc:
            raise MerchantUnavailable(f"cannot sign a merchant-link request: {exc}") from None
        return with_mac(unsigned, mac)


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
