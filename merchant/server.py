"""Thin shell: the merchant link served around :class:`merchant.core.MerchantCore` on the runtime's TLV host
(:mod:`acqkit.tlvhost`)."""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio
import anyio.abc

from acqkit.serving import PLAIN, Serving
from acqkit.tlvhost import TlvHost, serve_tlv
from merchant.core import MerchantCore
from merchant.store import MerchantStore, MerchantStoreError
from merchant.txnrecord import merchant_txn_fields
from wire.merchantlink import MERCHANT_LINK


class MerchantHost(TlvHost):
    def __init__(self, store: MerchantStore, *, clock: Callable[[], float] = time.time) -> None:
        self.merchant_core = MerchantCore(store.load())
        self.merchant_store = store
        super().__init__(
            MERCHANT_LINK,
            self.merchant_core,
            store,
            store_errors=(MerchantStoreError,),
            clock=clock,
            service="merchant",
            txn_fields=merchant_txn_fields,
        )


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
