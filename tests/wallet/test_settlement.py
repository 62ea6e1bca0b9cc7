"""The wallet's end-of-day batches (wallet/settlement.py) over a real SQLite store: totals net of refunds and
voids, frozen once opened, late give-backs in the next date's batch, and the wallet book's total unchanged."""

from __future__ import annotations

from pathlib import Path

from tests.wallet.helpers import ACCOUNT, MERCHANT, TERMINAL, Host
from wallet.model import MERCHANT_ACCOUNT_PREFIX, SETTLEMENT_ACCOUNT_PREFIX, BatchState, batch_key
from wallet.settlement import business_date
from wallet.store import WalletStore
from wire.field59 import Wallet
from wire.tlvlink import LinkMessage
from wire.walletlink import Kind

DAY_S = 86_400
OTHER_MERCHANT = "100000000000002"


def _open(host: Host, day: str) -> LinkMessage:
    return host.send(LinkMessage.of(Kind.SETTLE_OPEN, DA=day))


def _batch(host: Host, day: str, index: int) -> LinkMessage:
    return host.send(LinkMessage.of(Kind.SETTLE_BATCH, DA=day, IX=index))


def test_batches_total_each_wallet_and_merchant_net_of_refunds_and_voids(tmp_path: Path) -> None:
    host = Host(tmp_path / "w.sqlite3")
    total_before = host.book.total()
    day = business_date(host.clock())
    host.pay(host.code(), 10_000)
    refunded = host.pay(host.code(), 5_000)
    voided = host.pay(host.code(), 700)
    wechat = host.pay(host.code("TEST-WECHAT-1"), 300)
    host.send(
        LinkMessage.of(
            Kind.PAY, TI=TERMINAL, MI=OTHER_MERCHANT, ST=host.stan(), DT="1204", AM=2_000, A3=host.code(ACCOUNT)
        )
    )
    host.send(
        LinkMessage.of(Kind.REFUND, TI=TERMINAL, MI=MERCHANT, ST=host.stan(), DT="1204", A4=refunded["A4"], AM=1_200)
    )
    host.send(LinkMessage.of(Kind.VOID, TI=TERMINAL, MI=MERCHANT, ST=host.stan(), DT="1204", A4=voided["A4"]))
    assert wechat.result == "00"

    opened = _open(host, day)
    assert (opened.result, opened["CN"], opened["NT"]) == ("00", "3", str(10_000 + 3_800 + 2_000 + 300))
    batches = [_batch(host, day, i).as_dict() for i in range(3)]
    assert [(b["WL"], b["MI"], b["NT"], b["CN"], b["ON"]) for b in batches] == [
        ("unionpay", MERCHANT, "13800", "2", "open"),  # the voided payment nets to 0 and is left out
        ("unionpay", OTHER_MERCHANT, "2000", "1", "open"),
        ("wechat", MERCHANT, "300", "1", "open"),
    ]
    assert _batch(host, day, 3).result == "25"
    # The takings left the merchant's wallet account for the wallet's settlement account; nothing else moved.
    assert host.book.accounts[MERCHANT_ACCOUNT_PREFIX + MERCHANT].balance == 0
    assert host.book.accounts[SETTLEMENT_ACCOUNT_PREFIX + "unionpay"].balance == 15_800
    assert host.book.total() == total_before

    # Opening again changes nothing and answers the same; the store reloads to the same batches.
    assert _open(host, day).as_dict() == opened.as_dict()
    reloaded = WalletStore(host.path).load()
    assert reloaded.batches == host.book.batches and reloaded.settled == host.book.settled


def test_a_refund_after_settlement_goes_into_the_next_days_batch_and_marking_is_idempotent(tmp_path: Path) -> None:
    host = Host(tmp_path / "w.sqlite3")
    day = business_date(host.clock())
    paid = host.pay(host.code(), 4_000)
    assert _open(host, day)["NT"] == "4000"
    mark = LinkMessage.of(Kind.SETTLE_MARK, DA=day, WL="unionpay", MI=MERCHANT)
    assert host.send(mark)["ON"] == "settled"
    assert host.send(mark).get("TX") == "settled already"
    assert host.book.batches[batch_key(Wallet.UNIONPAY, day, MERCHANT)].state is BatchState.SETTLED
    assert host.send(LinkMessage.of(Kind.SETTLE_MARK, DA=day, WL="wechat", MI=MERCHANT)).result == "25"

    host.clock.now += DAY_S
    host.send(LinkMessage.of(Kind.REFUND, TI=TERMINAL, MI=MERCHANT, ST=host.stan(), DT="1205", A4=paid["A4"], AM=1_500))
    pending = host.pay(host.code(), 150_000)  # above the no-password limit: waits, so it is not due
    assert pending.result == "09"
    next_day = business_date(host.clock())
    opened = _open(host, next_day)
    assert (opened["CN"], opened["NT"]) == ("1", "-1500")
    assert _batch(host, next_day, 0)["NT"] == "-1500"


def test_a_bad_date_is_refused_and_opens_nothing(tmp_path: Path) -> None:
    host = Host(tmp_path / "w.sqlite3")
    host.pay(host.code(), 100)
    answer = _open(host, "20261399")
    assert answer.result == "30" and "YYYYMMDD" in answer["TX"]
    assert host.book.batches == {}


def test_a_give_back_reversed_before_it_arrived_is_refused_when_it_comes(tmp_path: Path) -> None:
    host = Host(tmp_path / "w.sqlite3")
    paid = host.pay(host.code(), 900)
    key = {"TI": TERMINAL, "MI": MERCHANT, "ST": host.stan(), "DT": "1204"}
    undo = host.send(LinkMessage.of(Kind.REVERSE_GIVE_BACK, **key))
    assert undo.result == "25"  # never arrived: nothing to undo, and it is refused from now on
    balance = host.balance()
    assert host.send(LinkMessage.of(Kind.VOID, **key, A4=paid["A4"])).result == "12"
    assert host.send(LinkMessage.of(Kind.REFUND, **key, A4=paid["A4"], AM=100)).result == "12"
    assert host.balance() == balance and host.book.payments[paid["A4"]].state.value == "paid"


def test_undoing_a_refund_after_the_payment_was_reversed_moves_nothing(tmp_path: Path) -> None:
    host = Host(tmp_path / "w.sqlite3")
    stan = host.stan()
    paid = host.pay(host.code(), 900, stan=stan)
    key = {"TI": TERMINAL, "MI": MERCHANT, "ST": host.stan(), "DT": "1204"}
    assert host.send(LinkMessage.of(Kind.REFUND, **key, A4=paid["A4"], AM=200)).result == "00"
    reverse = LinkMessage.of(Kind.REVERSE, TI=TERMINAL, MI=MERCHANT, ST=stan, DT="1204")
    assert host.send(reverse).result == "00"  # the rest (700) went back: the consumer has all 900
    balance = host.balance()
    undo = host.send(LinkMessage.of(Kind.REVERSE_GIVE_BACK, **key))
    assert (undo.result, undo["ON"]) == ("00", "reversed")
    assert host.balance() == balance  # the refund is part of a final give-back: not taken again
