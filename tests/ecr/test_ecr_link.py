"""The cash register and the terminal's ECR link over real loopback TCP, the terminal transacting through the
whole pipeline: a card sale with items and a coupon, a retried SALE that charges once, a void, status, a
malformed frame (ERRR; the terminal keeps serving), cash mode, and a terminal that is down."""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path

import anyio
import pytest

from acqkit.config import AcqsimConfig, Endpoint
from acqkit.netio import connect
from acqkit.tlvclient import LinkUnavailable
from acqsim.pipeline import running_pipeline
from ecr.register import Basket, Item, parse_item, ring_up, slip
from ecr.till import Till
from merchant.model import Sale
from merchant.server import MerchantHost
from merchant.server import serve as serve_platform
from merchant.store import MerchantStore
from terminal.ecr_link import EcrDesk, EcrLink, SaleRecord, serve_ecr
from terminal.pos import PosTerminal
from wire.ecrlink import ECR_LINK, EcrKind
from wire.merchantlink import MerchantKind
from wire.tlvlink import LinkMessage, decode_message, encode_message

pytestmark = pytest.mark.anyio
LOOPBACK = "127.0.0.1"
STEP_S = 20.0


async def test_a_till_charges_the_card_through_the_terminal(tmp_path: Path) -> None:
    config = AcqsimConfig.default(data_dir=tmp_path)
    fixture = config.terminals[0]
    card = config.cards[0]
    store = MerchantStore(tmp_path / "merchant.sqlite3")
    platform = MerchantHost(store)
    with anyio.fail_after(STEP_S * 3):
        async with running_pipeline(config) as pipeline, anyio.create_task_group() as tg:
            pos = PosTerminal(config, fixture.terminal_id, nac=pipeline.nac, persist=False)
            link = EcrLink(pos, card)
            ecr_port = await tg.start(functools.partial(serve_ecr, LOOPBACK, 0, link=link))
            platform_port = await tg.start(functools.partial(serve_platform, LOOPBACK, 0, platform=platform))
            till = Till(
                merchant_id=fixture.merchant_id,
                terminal_id=fixture.terminal_id,
                link=Endpoint(host=LOOPBACK, port=ecr_port),
                platform=Endpoint(host=LOOPBACK, port=platform_port),
            )
            assert till.platform is not None
            assert till.terminal is not None
            coupon = await till.platform.request(
                LinkMessage.of(MerchantKind.COUPON_ISSUE, MI=fixture.merchant_id, DA=300)
            )
            basket = ring_up(["coffee:12.00x2", "cake:8.50"], amount=None, till_id=fixture.terminal_id)
            basket, redeemed = await till.redeem_coupon(basket, coupon["CP"])
            assert redeemed.result == "00"
            assert basket.total == 2 * 1200 + 850 - 300

            status = await till.status()
            assert status["ON"] == "NOT-SIGNED-ON"  # it signs on by itself before the first sale
            sold = await till.sell(basket)
            assert sold.approved
            assert sold.recorded
            answer = sold.answer
            assert answer is not None
            assert answer["PM"] == "620000******0003"
            assert len(answer["RR"]) == 12
            assert len(answer["AC"]) == 6
            assert card.pan not in str(answer.as_dict())

            # The till lost the answer and asks again: the first result, the card charged once.
            again = await till.terminal.request(LinkMessage.of(EcrKind.SALE, AM=basket.total, ER=basket.reference))
            assert (again.result, again["ST"], again["RR"]) == ("00", answer["ST"], answer["RR"])

            # A malformed frame on its own connection: a clear error, and the same connection keeps serving.
            raw = await connect(LOOPBACK, ecr_port, timeout=STEP_S)
            await raw.send(b"MT004SALEAM005l0.00ER002r1")
            error = decode_message(await raw.receive(STEP_S) or b"", ECR_LINK)
            assert (error.kind, error.result) == (EcrKind.ERROR, "30")
            assert "AM" in error["TX"]
            await raw.send(b"\xff\xfe")
            assert decode_message(await raw.receive(STEP_S) or b"", ECR_LINK).kind == EcrKind.ERROR
            await raw.send(encode_message(LinkMessage.of(EcrKind.STATUS, ER=basket.reference), ECR_LINK))
            sale_status = decode_message(await raw.receive(STEP_S) or b"", ECR_LINK)
            assert (sale_status.result, sale_status["ON"], sale_status["RR"]) == ("00", "READY", answer["RR"])
            await raw.aclose()

            voided = await till.void(basket.reference)
            assert voided.result == "00"
            assert (await till.status(basket.reference))["ON"] == "VOIDED"
            assert (await till.void("no-such-ref")).result == "25"

            cash_basket = ring_up(["tea:8.00"], amount=None, till_id=fixture.terminal_id)
            async with Till(
                merchant_id=fixture.merchant_id,
                terminal_id=fixture.terminal_id,
                platform=Endpoint(host=LOOPBACK, port=platform_port),
            ) as cash_till:
                cash = await cash_till.sell(cash_basket, cash=True)
            assert cash.approved
            assert cash.recorded
            await till.aclose()
            tg.cancel_scope.cancel()
    sales: list[Sale] = sorted(platform.merchant_core.book.sales().values(), key=lambda s: s.method)
    assert [(s.method, s.amount) for s in sales] == [("CARD", basket.total), ("CASH", 800)]
    assert sales[0].items == (("coffee", 2, 1200), ("cake", 1, 850))
    store.close()


async def test_a_terminal_that_is_not_there() -> None:
    listener = await anyio.create_tcp_listener(local_host=LOOPBACK, local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()
    till = Till(merchant_id="100000000000001", terminal_id="10000001", link=Endpoint(host=LOOPBACK, port=port))
    with pytest.raises(LinkUnavailable):
        await till.sell(Basket(items=(Item("tea", 1, 800),), reference="r1"))
    await till.aclose()


def test_the_desk_forgets_the_oldest_sales_first() -> None:
    desk = EcrDesk(max_remembered=2)
    for ref in ("a", "b", "c"):
        desk.remember(SaleRecord(reference=ref, amount=1, result="00"))
    assert list(desk.sales) == ["b", "c"]


def test_items_and_slip() -> None:
    assert parse_item("coffee:12.00x2") == Item("coffee", 2, 1200)
    assert parse_item("a:b:1.50") == Item("a:b", 1, 150)
    for bad in ("coffee", "coffee:12.001", "coffee:1x0", "coffee:1xx", ":1"):
        with pytest.raises(ValueError, match=r"item|amount"):
            parse_item(bad)
    with pytest.raises(ValueError, match="nothing rung up"):
        ring_up([], amount=None, till_id="10000001")
    basket = ring_up(["coffee:12.00x2"], amount="1.00", till_id="10000001").with_discount(5000)
    assert basket.total == 0
    text = slip(basket, method="CASH", result="00", when=dt.datetime(2026, 12, 4, 9, 0))
    assert "TOTAL CNY" in text
    assert "coupon" in text
