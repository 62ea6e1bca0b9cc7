"""``acqsim.txn`` records of the TLV-link hosts over real TCP: the wallet host and the merchant platform write
one record per decision, with the front-end's transaction id where the request names terminal and STAN, and
nothing secret — no payment code, coupon code, voucher code, password or phone number in clear (the secrets
scan over the written log, with those values as extra needles)."""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path

import anyio
import pytest

from acqkit.txnlog import TXN_LOGGER, JsonLineFormatter
from merchant.client import MerchantClient
from merchant.server import MerchantHost
from merchant.server import serve as serve_merchant
from merchant.store import MerchantStore
from tests.secrets_scan import secrets_in
from wallet.client import WalletClient
from wallet.seed import TEST_PASSWORD
from wallet.server import WalletHost
from wallet.server import serve as serve_wallet
from wallet.store import WalletStore
from wire.merchantlink import MerchantKind
from wire.tlvlink import LinkMessage
from wire.walletlink import Kind

pytestmark = pytest.mark.anyio
TERMINAL, MERCHANT, ACCOUNT, PHONE = "10000001", "100000000000001", "TEST-UNIONPAY-1", "13812345678"


async def test_wallet_and_merchant_decisions_are_logged_masked(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=TXN_LOGGER.name)
    wallet_store, merchant_store = WalletStore(tmp_path / "w.sqlite3"), MerchantStore(tmp_path / "m.sqlite3")
    try:
        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:
                wallet_port = await tg.start(
                    functools.partial(serve_wallet, "127.0.0.1", 0, wallet=WalletHost(wallet_store))
                )
                merchant_port = await tg.start(
                    functools.partial(serve_merchant, "127.0.0.1", 0, platform=MerchantHost(merchant_store))
                )
                async with (
                    WalletClient("127.0.0.1", wallet_port) as wallet,
                    MerchantClient("127.0.0.1", merchant_port) as platform,
                ):
                    code = (await wallet.request(LinkMessage.of(Kind.CODE, CA=ACCOUNT)))["A3"]
                    pay = LinkMessage.of(Kind.PAY, TI=TERMINAL, MI=MERCHANT, ST="000042", DT="1204", AM=150, A3=code)
                    assert (await wallet.request(pay)).result == "00"
                    confirm = LinkMessage.of(Kind.CONFIRM, CA=ACCOUNT, A4="0" * 20, PW=TEST_PASSWORD)
                    assert (await wallet.request(confirm)).result != "00"  # no such payment: still logged
                    coupon = await platform.request(LinkMessage.of(MerchantKind.COUPON_ISSUE, MI=MERCHANT, DA=100))
                    joined = await platform.request(LinkMessage.of(MerchantKind.MEMBER_JOIN, MI=MERCHANT, PH=PHONE))
                    assert joined.result == "00"
                tg.cancel_scope.cancel()
    finally:
        wallet_store.close()
        merchant_store.close()
    records = [r for r in caplog.records if r.name == TXN_LOGGER.name]
    log_file = tmp_path / "logs" / "txn.log"
    log_file.parent.mkdir()
    log_file.write_text("".join(JsonLineFormatter().format(r) + "\n" for r in records))
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    by_kind = {(line["service"], line["kind"]): line for line in lines}
    assert set(by_kind) == {
        ("wallet", Kind.CODE),
        ("wallet", Kind.PAY),
        ("wallet", Kind.CONFIRM),
        ("merchant", MerchantKind.COUPON_ISSUE),
        ("merchant", MerchantKind.MEMBER_JOIN),
    }
    paid = by_kind["wallet", Kind.PAY]
    assert (paid["txn"], paid["code"], paid["amount"]) == ("T10000001-000042", "00", "150")
    assert paid["payment_code"] == code[:4] + "*" * (len(code) - 8) + code[-4:]
    assert by_kind["merchant", MerchantKind.MEMBER_JOIN]["phone"] == "1381***5678"
    assert "txn" not in by_kind["merchant", MerchantKind.COUPON_ISSUE]  # no terminal and STAN: no id
    extra = {
        "payment code": [code.encode()],
        "password": [f'"{TEST_PASSWORD}"'.encode(), f"PW{TEST_PASSWORD}".encode()],
        "coupon code": [coupon["CP"].encode()],
        "phone": [PHONE.encode()],
    }
    assert secrets_in(log_file.parent, "", extra) == []
