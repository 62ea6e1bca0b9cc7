"""The "settlement done" notice over real TCP: terminal → NAC → front-end settles a batch holding a card and a
QR sale while the merchant platform is DOWN; the settlement is answered anyway, the notice waits in the
journal, and once the platform comes up on its port the front-end's forwarder delivers it by itself —
exactly once, even when pushed again (its notice key). The platform requires signed requests: the front-end
signs the notice as its terminal in the HSM."""

from __future__ import annotations

import functools
from pathlib import Path

import anyio
import pytest

from acqkit.config import AcqsimConfig, Endpoint
from acqkit.freeport import free_port
from acqkit.keystore import read_key_store
from acqsim.pipeline import running_pipeline
from frontend.journal import Journal
from frontend.notices import MethodTotals, notice_key, settlement_notice
from hsm_sim.client import HsmClient
from merchant.client import MerchantClient, link_keys, terminal_signer
from merchant.server import HsmLinkVerifier, MerchantHost, serve
from merchant.store import MerchantStore
from terminal.pos import PosTerminal
from terminal.qrpay import qr_sale
from wallet.client import WalletClient
from wire.merchantlink import MerchantKind
from wire.tlvlink import LinkMessage
from wire.walletlink import Kind as WalletKind

pytestmark = pytest.mark.anyio
TERMINAL = "10000001"
POLL_S = 0.05


async def _listed(platform: MerchantClient, merchant_id: str) -> LinkMessage:
    return await platform.request(LinkMessage.of(MerchantKind.NOTICE_LIST, MI=merchant_id, TI=TERMINAL))


async def test_a_settled_batch_reaches_the_message_centre_once_after_the_platform_was_down(tmp_path: Path) -> None:
    config = AcqsimConfig.default(data_dir=tmp_path)
    merchant_id = next(t.merchant_id for t in config.terminals if t.terminal_id == TERMINAL)
    card = config.card("6200001000000003")
    platform_at = Endpoint(host="127.0.0.1", port=free_port())
    store = MerchantStore(tmp_path / "merchant.sqlite3")
    try:
        with anyio.fail_after(60):
            async with (
                running_pipeline(config, merchant_platform=platform_at) as pipeline,
                anyio.create_task_group() as tg,
            ):
                async with PosTerminal(config, TERMINAL, nac=pipeline.nac) as pos:
                    bought = await pos.financial("purchase", card, amount=1234, pin=card.pin)
                    assert bought is not None and bought.approved
                    async with WalletClient(pipeline.wallet.host, pipeline.wallet.port) as app:
                        code = (await app.request(LinkMessage.of(WalletKind.CODE, CA="TEST-WECHAT-1")))["A3"]
                    paid = await qr_sale(pos, code, 500)
                    assert paid is not None and paid.approved
                    batch = pos.session.state.batch
                    settled, _ = await pos.settle()
                assert settled is not None and settled.approved  # the platform being down costs nothing here
                journal = Journal(Path(config.store_path(config.frontend.db)))
                try:
                    assert len(journal.pending_merchant_notices()) == 1  # owed, durably
                finally:
                    journal.close()

                # The platform comes up, requiring signed requests (MACs verified in the HSM): nobody runs a
                # command, the forwarder signs the notice as its terminal (M6 in the HSM) and delivers it.
                hsm = await HsmClient.connect(pipeline.hsm.host, pipeline.hsm.port)
                verifier = HsmLinkVerifier(hsm, link_keys(read_key_store(config.key_store_path)))
                host = MerchantHost(store, verifier=verifier)
                await tg.start(functools.partial(serve, platform_at.host, platform_at.port, platform=host))
                journal = Journal(Path(config.store_path(config.frontend.db)))
                try:
                    # Polled under the test's deadline: the row goes once the platform answered 00 (at the
                    # forwarder's next round, within REVERSAL_RETRY_S).
                    while pending := journal.pending_merchant_notices():
                        assert len(pending) == 1
                        await anyio.sleep(POLL_S)
                finally:
                    journal.close()
                signer = terminal_signer(config, TERMINAL)
                async with MerchantClient(platform_at.host, platform_at.port, signer=signer) as platform:
                    listed = await _listed(platform, merchant_id)
                    shown = f"batch {batch} settled: CARD 1/12.34 -0/0.00; QR 1/5.00 -0/0.00"
                    assert (listed["CN"], listed["N1"]) == ("1", f"1|SETTLEMENT|{shown}")

                    # The same notice again (a retry after a lost answer): answered with its number, not stored.
                    totals = {"CARD": MethodTotals(1, 1234), "QR": MethodTotals(1, 500)}
                    again = await platform.request(settlement_notice(merchant_id, TERMINAL, batch, totals))
                    assert (again.result, again["ID"]) == ("00", "1")
                    assert (await _listed(platform, merchant_id))["CN"] == "1"
                await hsm.aclose()
                tg.cancel_scope.cancel()
        notices = list(store.load().notices().values())
        assert [n.key for n in notices] == [notice_key(TERMINAL, batch)]
    finally:
        store.close()
