"""Thin shell: the merchant link served around :class:`merchant.core.MerchantCore` on the runtime's TLV host
(:mod:`acqkit.tlvhost`). With a :class:`HsmLinkVerifier` every request must be signed (docs/smartpos.md,
"Authentication"): the time window and nonces are checked here (:mod:`merchant.auth`), the MAC by the HSM (M8,
HMAC-SHA-256/64) under the signer's key from the key store — the platform never holds a clear key."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping

import anyio
import anyio.abc

from acqkit.serving import PLAIN, Serving
from acqkit.tlvhost import SYSTEM_MALFUNCTION, TlvHost, serve_tlv
from hsm_sim.client import HsmClient, HsmError, KeyType
from merchant.auth import Refusal, ReplayGuard
from merchant.core import MerchantCore
from merchant.store import MerchantStore, MerchantStoreError
from merchant.txnrecord import merchant_txn_fields
from wire.merchantlink import LINK_MAC, MERCHANT_LINK, TAG_KEY_ID, AuthResult
from wire.tlvlink import LinkMessage

log = logging.getLogger("acqsim.merchant")

#: ``verify(key id, data, mac)`` → whether the MAC verifies, ``None`` for a key id without a key.
MacVerifier = Callable[[str, bytes, bytes], Awaitable[bool | None]]


class HsmLinkVerifier:
    """Verifies merchant-link MACs in the HSM (M8) under each signer's key, a cryptogram under the LMK."""

    def __init__(self, hsm: HsmClient, keys: Mapping[str, str]) -> None:
        self.hsm = hsm
        self.keys = dict(keys)  # key id (terminal id) → cryptogram

    async def __call__(self, key_id: str, data: bytes, mac: bytes) -> bool | None:
        cryptogram = self.keys.get(key_id)
        if cryptogram is None:
            return None
        return await self.hsm.verify_mac(KeyType.HMK, cryptogram, data, mac, LINK_MAC)


class MerchantHost(TlvHost):
    def __init__(
        self, store: MerchantStore, *, clock: Callable[[], float] = time.time, verifier: MacVerifier | None = None
    ) -> None:
        """``verifier``: every request must be signed, and this checks its MAC (``None``: none need be)."""
        self.merchant_core = MerchantCore(store.load())
        self.merchant_store = store
        self.verifier = verifier
        self.guard = ReplayGuard()
        super().__init__(
            MERCHANT_LINK,
            self.merchant_core,
            store,
            store_errors=(MerchantStoreError,),
            clock=clock,
            service="merchant",
            txn_fields=merchant_txn_fields,
        )

    async def admit(self, message: LinkMessage) -> LinkMessage | None:
        if self.verifier is None:
            return None
        checked = self.guard.precheck(message, self.clock())
        if isinstance(checked, Refusal):
            return self._refuse(message, checked)
        try:
            verified = await self.verifier(checked.key_id, checked.data, checked.mac)
        except HsmError as exc:
            log.warning("merchant link: cannot verify a %s request: %s", message.kind, exc)
            return message.answer(SYSTEM_MALFUNCTION, TX="cannot verify the request now")
        if verified is None:
            return self._refuse(message, Refusal(AuthResult.UNKNOWN_KEY, "no merchant-link key for KI"))
        if not verified:
            return self._refuse(message, Refusal(AuthResult.BAD_MAC, "HM does not verify"))
        replayed = self.guard.admit(checked, self.clock())
        return None if replayed is None else self._refuse(message, replayed)

    def _refuse(self, message: LinkMessage, refusal: Refusal) -> LinkMessage:
        """The refusal, logged with the kind, the key id and the reason: never the MAC or the nonce's key."""
        log.warning(
            "merchant link: %s request from key id %s refused %s: %s",
            message.kind,
            message.get(TAG_KEY_ID) or "-",
            refusal.code,
            refusal.reason,
        )
        return message.answer(refusal.code, TX=refusal.reason)


async def serve(
    host: str,
    port: int,
    *,
    platform: MerchantHost,
    serving: Serving = PLAIN,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the merchant link on ``host:port`` until cancelled; ``task_status.started(port)``."""
    await serve_tlv(host, port, tlv_host=platform, name="merchant", serving=serving, task_status=task_status)
