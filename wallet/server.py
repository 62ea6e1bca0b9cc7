"""Thin shell: the wallet link served around :class:`wallet.core.WalletCore` on the runtime's TLV host
(:mod:`acqkit.tlvhost`: one decision at a time, committed before it is answered; ``ERRR`` for a frame that
does not decode; 96 for everything once the store has failed)."""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio
import anyio.abc

from acqkit.serving import PLAIN, Serving
from acqkit.tlvhost import TlvHost, serve_tlv
from wallet.core import WalletCore
from wallet.seed import seed_accounts
from wallet.store import WalletStore, WalletStoreError
from wallet.txnrecord import wallet_txn_fields
from wire.walletlink import WALLET_LINK


class WalletHost(TlvHost):
    """The wallet core over its store; with ``seed`` the TEST accounts are opened on first start."""

    def __init__(self, store: WalletStore, *, clock: Callable[[], float] = time.time, seed: bool = True) -> None:
        book = store.load()
        if seed:
            opening = seed_accounts(book)
            store.commit(opening)
            book.apply(opening)
        self.wallet_core = WalletCore(book)
        self.wallet_store = store
        super().__init__(
            WALLET_LINK,
            self.wallet_core,
            store,
            store_errors=(WalletStoreError,),
            clock=clock,
            service="wallet",
            txn_fields=wallet_txn_fields,
        )


async def serve(
    host: str,
    port: int,
    *,
    wallet: WalletHost,
    serving: Serving = PLAIN,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the wallet link on ``host:port`` until cancelled; ``task_status.started(port)``."""
    await serve_tlv(host, port, tlv_host=wallet, name="wallet", serving=serving, task_status=task_status)
