"""The merchant platform's apps on a real SQLite store: coupons and group-buy vouchers used once, expiry,
voucher settlement, the booking state table, notices, members by phone or card fingerprint, the sales log
and its report (text, JSON, PNG)."""

from __future__ import annotations

import datetime as dt
import functools
import itertools
from pathlib import Path

import anyio
import pytest

from acqkit.datakey import DataKey
from acqkit.netio import connect
from merchant.analytics import plot, report, text
from merchant.client import MerchantClient
from merchant.core import MerchantCore
from merchant.coupons import COUPON_LIFETIME_S
from merchant.model import BookingState, VoucherState
from merchant.server import MerchantHost, serve
from merchant.store import MerchantStore
from wire.errors import MessageDecodeError
from wire.merchantlink import MerchantKind as K
from wire.merchantlink import encode_items, parse_items
from wire.tlvlink import LinkMessage

MID = "100000000000001"
TID = "10000001"
NOW = 1_800_000_000.0


class Platform:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.store = MerchantStore(path)
        counter = itertools.count(1)
        self.core = MerchantCore(self.store.load(), numbers=lambda n: f"{next(counter):0{n}d}")
        self.now = NOW

    def send(self, kind: str, **values: str | int | None) -> LinkMessage:
        decision = self.core.decide(LinkMessage.of(kind, **values), self.now)
        self.store.commit(decision.records)
        self.core.apply(decision.records)
        return decision.answer


@pytest.fixture
def platform(tmp_path: Path) -> Platform:
    return Platform(tmp_path / "merchant.sqlite3")


def test_a_coupon_comes_off_one_basket_only(platform: Platform) -> None:
    code = platform.send(K.COUPON_ISSUE, MI=MID, DA=500, MS=2000)["CP"]
    assert platform.send(K.COUPON_REDEEM, MI=MID, CP=code, AM=1999, ER="b1").result == "13"  # below min spend
    first = platform.send(K.COUPON_REDEEM, MI=MID, CP=code, AM=3000, ER="b2")
    assert (first.result, first["DA"], first["AM"]) == ("00", "500", "2500")
    assert platform.send(K.COUPON_REDEEM, MI=MID, CP=code, AM=3000, ER="b2") == first  # the same basket again
    assert platform.send(K.COUPON_REDEEM, MI=MID, CP=code, AM=3000, ER="b3").result == "94"  # used
    assert platform.send(K.COUPON_REDEEM, MI="100000000000999", CP=code, AM=3000, ER="b4").result == "25"


def test_an_expired_coupon_is_refused(platform: Platform) -> None:
    code = platform.send(K.COUPON_ISSUE, MI=MID, DA=500)["CP"]
    platform.now += COUPON_LIFETIME_S
    assert platform.send(K.COUPON_REDEEM, MI=MID, CP=code, AM=3000, ER="b1").result == "54"


def test_a_group_buy_voucher_is_verified_once_and_settled(platform: Platform) -> None:
    codes = [platform.send(K.VOUCHER_SELL, MI=MID, NM="set menu for two", AM=10000)["GV"] for _ in range(2)]
    verified = platform.send(K.VOUCHER_VERIFY, MI=MID, GV=codes[0], ER="till-1")
    assert (verified.result, verified["NM"]) == ("00", "set menu for two")
    assert platform.send(K.VOUCHER_VERIFY, MI=MID, GV=codes[0], ER="till-2").result == "94"
    settled = platform.send(K.VOUCHER_SETTLE, MI=MID)
    assert (settled["CN"], settled["AM"]) == ("1", "9500")  # less the 5 % commission; the unverified one waits
    assert platform.send(K.VOUCHER_SETTLE, MI=MID)["CN"] == "0"  # settled once
    assert platform.core.book.vouchers()[codes[0]].state is VoucherState.SETTLED


def test_booking_follows_its_state_table(platform: Platform) -> None:
    number = platform.send(K.BOOKING_NEW, MI=MID, SL="2026-12-04T19:00", NM="Ms Li", AM=20000)["BK"]
    assert platform.send(K.BOOKING_NEW, MI=MID, SL="2026-12-04T19:00", NM="Mr Wu", AM=20000).result == "94"
    assert platform.send(K.BOOKING_DONE, BK=number, AM=18800).result == "12"  # not held yet
    held = platform.send(K.BOOKING_PAID, BK=number, AC="123456", ST="000042")
    assert (held.result, held["ON"]) == ("00", "held")
    assert platform.send(K.BOOKING_PAID, BK=number, AC="123456", ST="000042").result == "00"  # a retry
    done = platform.send(K.BOOKING_DONE, BK=number, AM=18800)
    assert done["ON"] == "completed"
    assert platform.send(K.BOOKING_CANCEL, BK=number).result == "12"
    other = platform.send(K.BOOKING_NEW, MI=MID, SL="2026-12-04T20:00", NM="Mr Wu", AM=20000)["BK"]
    platform.send(K.BOOKING_PAID, BK=other, AC="654321", ST="000043")
    cancelled = platform.send(K.BOOKING_CANCEL, BK=other)
    assert (cancelled["ON"], cancelled["AC"], cancelled["ST"]) == ("cancelled", "654321", "000043")
    assert platform.core.book.bookings()[number].state is BookingState.COMPLETED


def test_notices_are_listed_newest_first(platform: Platform) -> None:
    platform.send(K.NOTICE_PUSH, MI=MID, MK="SETTLEMENT", TX="batch 000001 settled")
    platform.send(K.NOTICE_PUSH, MI=MID, MK="CHARGEBACK", TX="chargeback on RRN 000000000042", TI="10000009")
    platform.send(K.NOTICE_PUSH, MI=MID, MK="PARAMETERS", TX="parameter version 7")
    assert platform.send(K.NOTICE_PUSH, MI=MID, MK="SPAM", TX="x").result == "30"
    listed = platform.send(K.NOTICE_LIST, MI=MID, TI=TID)
    assert listed["CN"] == "2"  # the chargeback was for another terminal
    assert listed["N1"] == "3|PARAMETERS|parameter version 7"
    assert listed["N2"].startswith("1|SETTLEMENT")


def test_a_notice_key_stores_one_notice_however_often_it_is_pushed(platform: Platform) -> None:
    first = platform.send(K.NOTICE_PUSH, MI=MID, MK="SETTLEMENT", TX="batch 000001 settled", NK="SETTLE x 000001")
    again = platform.send(K.NOTICE_PUSH, MI=MID, MK="SETTLEMENT", TX="batch 000001 settled", NK="SETTLE x 000001")
    assert (first.result, again.result, first["ID"], again["ID"]) == ("00", "00", "1", "1")
    other = platform.send(K.NOTICE_PUSH, MI="100000000000002", MK="SETTLEMENT", TX="b", NK="SETTLE x 000001")
    assert other["ID"] == "2"  # keys are the sender's, per merchant
    assert platform.send(K.NOTICE_LIST, MI=MID, TI=TID)["CN"] == "1"
    assert len(MerchantStore(platform.path).load().notices()) == 2  # and so is the store


def test_members_by_phone_or_card_fingerprint_and_points(platform: Platform, tmp_path: Path) -> None:
    key = DataKey.ephemeral()
    fingerprint = key.fingerprint("6200001000000003")
    member = platform.send(K.MEMBER_JOIN, MI=MID, PH="13800000000", FP=fingerprint)["MB"]
    assert platform.send(K.MEMBER_JOIN, MI=MID, PH="13800000000").result == "94"
    assert platform.send(K.MEMBER_FIND, MI=MID, FP=fingerprint)["MB"] == member
    assert platform.send(K.MEMBER_FIND, MI=MID, PH="13800000000")["MB"] == member
    assert platform.send(K.MEMBER_FIND, MI=MID, PH="13900000000").result == "25"
    assert platform.send(K.MEMBER_POINTS, MI=MID, MB=member, AM=12345)["PT"] == "123"
    redeemed = platform.send(K.MEMBER_POINTS, MI=MID, MB=member, PR=100)
    assert (redeemed["PT"], redeemed["DA"]) == ("23", "100")
    assert platform.send(K.MEMBER_POINTS, MI=MID, MB=member, PR=24).result == "51"
    stored = (tmp_path / "merchant.sqlite3").read_bytes()
    assert b"6200001000000003" not in stored  # only the fingerprint is kept


def test_sales_log_and_report(platform: Platform, tmp_path: Path) -> None:
    at = dt.datetime(2026, 12, 4, 9, 15, tzinfo=dt.UTC).timestamp()
    sales = [
        ("r1", 3600, "CARD", (("coffee", 2, 1200), ("cake", 1, 1200))),
        ("r2", 1200, "QR", (("coffee", 1, 1200),)),
        ("r3", 800, "CASH", (("tea", 1, 800),)),
    ]
    for ref, amount, method, items in sales:
        answer = platform.send(K.SALE, MI=MID, TI=TID, ER=ref, AM=amount, PY=method, IT=encode_items(items), AT=int(at))
        assert answer.result == "00"
    assert platform.send(K.SALE, MI=MID, TI=TID, ER="r1", AM=3600, PY="CARD").result == "00"  # not counted twice
    assert platform.send(K.SALE, MI=MID, TI=TID, ER="r9", AM=1, PY="GOLD").result == "30"
    assert platform.send(K.SALE, MI=MID, TI=TID, ER="r9", AM=1, PY="CASH", IT="coffee*x*1").result == "30"
    rep = report(platform.core.book.sales().values(), MID, tz=dt.UTC)
    assert (rep.count, rep.total, rep.average_ticket) == (3, 5600, 1866)
    assert rep.by_hour[9] == (3, 5600)
    assert rep.by_method == {"CARD": (1, 3600), "QR": (1, 1200), "CASH": (1, 800)}
    assert rep.top_items[0] == ("coffee", 3, 3600)
    assert "average ticket 18.66" in text(rep)
    assert rep.as_json()["by_hour"] == [{"hour": 9, "count": 3, "amount": 5600}]
    chart = tmp_path / "report.png"
    plot(rep, str(chart))
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_items_format() -> None:
    items = (("noodles", 2, 1800), ("tea", 1, 500))
    assert parse_items(encode_items(items)) == items
    with pytest.raises(MessageDecodeError) as caught:
        parse_items("tea*1*500;bad")
    assert caught.value.offset == 10
    with pytest.raises(ValueError, match="may not contain"):
        encode_items((("a;b", 1, 1),))


def test_records_survive_a_restart(platform: Platform) -> None:
    code = platform.send(K.COUPON_ISSUE, MI=MID, DA=500)["CP"]
    platform.send(K.COUPON_REDEEM, MI=MID, CP=code, AM=900, ER="b1")
    platform.store.close()
    again = Platform(platform.path)
    again.now = platform.now
    assert again.send(K.COUPON_REDEEM, MI=MID, CP=code, AM=900, ER="b2").result == "94"
    again.store.close()


@pytest.mark.anyio
async def test_the_platform_over_tcp_answers_a_bad_frame_and_carries_on(tmp_path: Path) -> None:
    store = MerchantStore(tmp_path / "m.sqlite3")
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            port = await tg.start(functools.partial(serve, "127.0.0.1", 0, platform=MerchantHost(store)))
            conn = await connect("127.0.0.1", port, timeout=5)
            await conn.send(b"MT004CPISMI015" + MID.encode() + b"DA003abc")
            error = await conn.receive(5)
            assert error is not None
            assert error.startswith(b"MT004ERRRRC00230")
            assert b"DA" in error
            await conn.aclose()
            async with MerchantClient("127.0.0.1", port) as client:
                answer = await client.request(LinkMessage.of(K.COUPON_ISSUE, MI=MID, DA=500))
                assert answer.result == "00"
            tg.cancel_scope.cancel()
    store.close()
