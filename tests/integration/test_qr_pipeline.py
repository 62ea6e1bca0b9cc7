"""QR payments over the whole path on loopback — terminal → NAC → front-end → wallet host — with the consumer's
wallet app beside it: a scanned code, a payment waiting for the password then polled, an order QR paid by the
app, a void by voucher; the terminal's settlement balances and reconciliation (journal vs ledger and wallet)
is clean."""

from __future__ import annotations

import functools
from pathlib import Path

import anyio
import pytest

from acqkit.config import AcqsimConfig
from acqsim.pipeline import running_pipeline
from acqsim.reconcile import reconcile_stores
from core_ledger.client import LedgerClient
from frontend.forwarder import ReversalForwarder
from frontend.journal import Journal
from terminal.pos import PosTerminal
from terminal.qrpay import order_of, qr_order, qr_refund, qr_sale, qr_void, voucher_of, wait_for_payment
from wallet.client import WalletClient
from wallet.codes import NO_PASSWORD_LIMIT
from wallet.seed import TEST_PASSWORD
from wallet.server import WalletHost
from wallet.server import serve as serve_wallet
from wallet.store import WALLET_DB, WalletStore
from wire.fields import SettlementTotals
from wire.tlvlink import LinkMessage
from wire.walletlink import Kind

pytestmark = pytest.mark.anyio
ACCOUNT = "TEST-WECHAT-1"
POLL_S = 0.05


async def test_qr_payments_end_to_end(tmp_path: Path) -> None:
    config = AcqsimConfig.default(data_dir=tmp_path)
    with anyio.fail_after(60):
        async with running_pipeline(config) as pipeline:
            app = WalletClient(pipeline.wallet.host, pipeline.wallet.port)
            async with PosTerminal(config, "10000001", nac=pipeline.nac) as pos:
                code = (await app.request(LinkMessage.of(Kind.CODE, CA=ACCOUNT)))["A3"]
                sale = await qr_sale(pos, code, 1234, serial="SN-TEST-1")
                assert sale is not None
                assert sale.approved
                assert voucher_of(sale)

                big = (await app.request(LinkMessage.of(Kind.CODE, CA=ACCOUNT)))["A3"]
                pending = await qr_sale(pos, big, NO_PASSWORD_LIMIT + 1)
                assert pending is not None
                assert pending.response_code == "09"
                confirmed = await app.request(
                    LinkMessage.of(Kind.CONFIRM, CA=ACCOUNT, A4=voucher_of(pending), PW=TEST_PASSWORD)
                )
                assert confirmed.result == "00"
                paid = await wait_for_payment(pos, pending, interval=POLL_S, deadline=10)
                assert paid is not None
                assert paid.approved
                assert pos.session.state.pending_reversal is None

                order = await qr_order(pos, 2500)
                assert order is not None
                assert order.response_code == "09"
                shown = order_of(order)
                assert shown.qr_content
                assert (await app.request(LinkMessage.of(Kind.PAY_ORDER, CA=ACCOUNT, QO=shown.order))).result == "00"
                order_paid = await wait_for_payment(pos, order, interval=POLL_S, deadline=10)
                assert order_paid is not None
                assert order_paid.approved

                void = await qr_void(pos, sale)
                assert void is not None
                assert void.approved

                outcome, totals = await pos.settle()
                assert outcome is not None
                assert outcome.approved
                assert totals.domestic.debit_count == 3
                assert totals.domestic.debit_amount == 1234 + NO_PASSWORD_LIMIT + 1 + 2500
                assert totals.domestic.credit_amount == 1234
                assert SettlementTotals.parse(outcome.fields["48"]).domestic.flag == "1"
            balance = await app.request(LinkMessage.of(Kind.BALANCE, CA=ACCOUNT))
            assert int(balance["BL"]) == 500_000 - (NO_PASSWORD_LIMIT + 1) - 2500
            await app.aclose()
    result = reconcile_stores(
        Path(config.store_path(config.frontend.db)), config.store_path(config.ledger.db), tmp_path / WALLET_DB
    )
    assert result.clean, result.differences
    assert (result.journal_rows, result.matched) == (4, 4)  # two sales, the order, the void


async def test_the_wallet_host_down_answers_98_and_the_reversal_is_forwarded_when_it_is_back(tmp_path: Path) -> None:
    config = AcqsimConfig.default(data_dir=tmp_path)
    store = WalletStore(tmp_path / WALLET_DB)
    with anyio.fail_after(60):
        async with running_pipeline(config) as pipeline, anyio.create_task_group() as tg:
            app = WalletClient(pipeline.wallet.host, pipeline.wallet.port)
            code = (await app.request(LinkMessage.of(Kind.CODE, CA=ACCOUNT)))["A3"]
            await app.aclose()
            pipeline.wallet_stop.cancel()  # the wallet host goes down
            async with PosTerminal(config, "10000001", nac=pipeline.nac) as pos:
                sale = await qr_sale(pos, code, 700)
            assert sale is not None
            assert sale.response_code == "98"  # no answer from the wallet: the front-end owns a reversal
            journal = Journal(Path(config.store_path(config.frontend.db)))
            port = pipeline.wallet.port
            try:
                assert len(journal.pending_wallet_reversals()) == 1  # durable in the journal
                # The wallet host comes back on its port, over the same store; the queue is forwarded to it.
                await tg.start(functools.partial(serve_wallet, "127.0.0.1", port, wallet=WalletHost(store)))
                async with (
                    WalletClient("127.0.0.1", port) as back,
                    LedgerClient(pipeline.ledger.host, pipeline.ledger.port) as ledger,
                ):
                    await ReversalForwarder(journal, ledger, wallet=back).forward_wallet_reversals()
                    assert journal.pending_wallet_reversals() == []
                    balance = await back.request(LinkMessage.of(Kind.BALANCE, CA=ACCOUNT))
                    assert int(balance["BL"]) == 500_000  # never charged
                    key = {"TI": "10000001", "MI": sale.fields["42"], "ST": sale.fields["11"], "DT": sale.fields["13"]}
                    late = await back.request(LinkMessage.of(Kind.PAY, **key, AM=700, A3=code))
                    assert late.result == "12"  # the reversal's tombstone refuses the payment arriving late
            finally:
                journal.close()
            tg.cancel_scope.cancel()
    store.close()


async def test_a_refund_while_the_wallet_host_is_down_is_reversed_when_it_is_back(tmp_path: Path) -> None:
    """Over TCP: the refund gets 98; its RVGB waits in the journal; once the wallet host is back the forwarder
    delivers it (the refund never arrived: the wallet refuses it from then on); balance and payment as before."""
    config = AcqsimConfig.default(data_dir=tmp_path)
    store = WalletStore(tmp_path / WALLET_DB)
    with anyio.fail_after(60):
        async with running_pipeline(config) as pipeline, anyio.create_task_group() as tg:
            app = WalletClient(pipeline.wallet.host, pipeline.wallet.port)
            async with PosTerminal(config, "10000001", nac=pipeline.nac) as pos:
                code = (await app.request(LinkMessage.of(Kind.CODE, CA=ACCOUNT)))["A3"]
                sale = await qr_sale(pos, code, 1_500)
                assert sale is not None and sale.approved
                paid_balance = int((await app.request(LinkMessage.of(Kind.BALANCE, CA=ACCOUNT)))["BL"])
                await app.aclose()
                pipeline.wallet_stop.cancel()  # the wallet host goes down
                refund = await qr_refund(pos, sale, 500)
            assert refund is not None
            assert refund.response_code == "98"
            journal = Journal(Path(config.store_path(config.frontend.db)))
            port = pipeline.wallet.port
            try:
                [(_, queued)] = journal.pending_wallet_reversals()
                assert queued.startswith("MT004" + Kind.REVERSE_GIVE_BACK)
                await tg.start(functools.partial(serve_wallet, "127.0.0.1", port, wallet=WalletHost(store)))
                async with (
                    WalletClient("127.0.0.1", port) as back,
                    LedgerClient(pipeline.ledger.host, pipeline.ledger.port) as ledger,
                ):
                    await ReversalForwarder(journal, ledger, wallet=back).forward_wallet_reversals()
                    assert journal.pending_wallet_reversals() == []
                    balance = await back.request(LinkMessage.of(Kind.BALANCE, CA=ACCOUNT))
                    assert int(balance["BL"]) == paid_balance  # nothing given back, nothing owed
                    key = {"TI": "10000001", "MI": refund.fields["42"], "ST": refund.fields["11"]}
                    late = LinkMessage.of(Kind.REFUND, **key, DT=refund.fields["13"], A4=voucher_of(sale), AM=500)
                    assert (await back.request(late)).result == "12"  # refused should it arrive late
            finally:
                journal.close()
            tg.cancel_scope.cancel()
    store.close()
    result = reconcile_stores(
        Path(config.store_path(config.frontend.db)), config.store_path(config.ledger.db), tmp_path / WALLET_DB
    )
    assert result.clean, result.differences
