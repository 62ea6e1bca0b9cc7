"""The wallet host's rules on a real SQLite store: payment codes (expiry, single use), pending payments,
reversal, void, refund, order QRs (主扫), retries answered once; the book's total never changes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tests.wallet.helpers import ACCOUNT, MERCHANT, TERMINAL, Host
from wallet.codes import CODE_LIFETIME_S, NO_PASSWORD_LIMIT, PENDING_LIFETIME_S
from wallet.core import order_of_qr
from wallet.model import MERCHANT_ACCOUNT_PREFIX, PaymentState, WalletBook
from wallet.seed import OPENING_BALANCE, TEST_PASSWORD
from wallet.store import WalletStore
from wire.errors import MessageDecodeError
from wire.field59 import Wallet, wallet_of
from wire.tlvlink import LinkMessage
from wire.walletlink import EXPIRED, PENDING, USED, Kind


@pytest.fixture
def host(tmp_path: Path) -> Host:
    return Host(tmp_path / "wallet.sqlite3")


def _total(book: WalletBook) -> int:
    return book.total()


def test_a_code_pays_once_and_moves_the_money(host: Host) -> None:
    before = _total(host.book)
    code = host.code()
    assert wallet_of(code) is Wallet.UNIONPAY
    answer = host.pay(code, 1234)
    assert answer.result == "00"
    assert answer["A4"]
    assert len(answer["AC"]) == 6
    assert host.balance() == OPENING_BALANCE - 1234
    assert host.book.accounts[MERCHANT_ACCOUNT_PREFIX + MERCHANT].balance == 1234
    again = host.pay(code, 1234)  # a new request (new STAN) with the same code
    assert again.result == USED
    assert host.balance() == OPENING_BALANCE - 1234
    assert _total(host.book) == before


def test_an_expired_code_is_refused(host: Host) -> None:
    code = host.code()
    host.clock.now += CODE_LIFETIME_S
    assert host.pay(code, 100).result == EXPIRED
    assert host.balance() == OPENING_BALANCE


@pytest.mark.parametrize("code", ["6200000000000000000", "9900000000000000000"])
def test_an_unknown_or_foreign_code_is_refused(host: Host, code: str) -> None:
    assert host.pay(code, 100).result == "14"


def test_each_wallet_issues_its_own_prefix(host: Host) -> None:
    assert wallet_of(host.code("TEST-WECHAT-1")) is Wallet.WECHAT
    assert wallet_of(host.code("TEST-ALIPAY-1")) is Wallet.ALIPAY
    assert host.send(LinkMessage.of(Kind.CODE, CA="NOBODY")).result == "14"


def test_a_retried_request_gets_its_first_answer_and_charges_once(host: Host) -> None:
    code = host.code()
    first = host.pay(code, 500, stan="000777")
    second = host.pay(code, 500, stan="000777")
    assert second == first
    assert host.balance() == OPENING_BALANCE - 500


def test_insufficient_funds_declines_and_still_uses_the_code(host: Host) -> None:
    code = host.code()
    host.book.accounts[ACCOUNT] = dataclasses.replace(host.book.accounts[ACCOUNT], balance=10)
    assert host.pay(code, 11).result == "51"
    assert host.pay(code, 5).result == USED  # a code is good for one try
    assert host.balance() == 10


def test_a_large_payment_waits_for_the_password_then_the_terminal_polls(host: Host) -> None:
    code = host.code()
    amount = NO_PASSWORD_LIMIT + 1
    answer = host.pay(code, amount)
    assert answer.result == PENDING
    voucher = answer["A4"]
    query = LinkMessage.of(Kind.QUERY, TI=TERMINAL, A4=voucher)
    assert host.send(query).result == PENDING
    assert host.balance() == OPENING_BALANCE
    wrong = host.send(LinkMessage.of(Kind.CONFIRM, CA=ACCOUNT, A4=voucher, PW="000000"))
    assert wrong.result == "55"
    right = host.send(LinkMessage.of(Kind.CONFIRM, CA=ACCOUNT, A4=voucher, PW=TEST_PASSWORD))
    assert right.result == "00"
    assert host.send(query).result == "00"
    assert host.balance() == OPENING_BALANCE - amount


def test_a_pending_payment_closes_if_never_confirmed(host: Host) -> None:
    answer = host.pay(host.code(), NO_PASSWORD_LIMIT + 1)
    host.clock.now += PENDING_LIFETIME_S
    query = host.send(LinkMessage.of(Kind.QUERY, TI=TERMINAL, A4=answer["A4"]))
    assert query.result == "12"
    assert query["ON"] == PaymentState.CLOSED
    late = host.send(LinkMessage.of(Kind.CONFIRM, CA=ACCOUNT, A4=answer["A4"], PW=TEST_PASSWORD))
    assert late.result == "12"
    assert host.balance() == OPENING_BALANCE


def _merchant(kind: str, stan: str, **values: str | int) -> LinkMessage:
    return LinkMessage.of(kind, TI=TERMINAL, MI=MERCHANT, ST=stan, DT="1204", **values)


def test_reversal_gives_the_money_back_once(host: Host) -> None:
    before = _total(host.book)
    host.pay(host.code(), 800, stan="000010")
    reversal = _merchant(Kind.REVERSE, "000010")
    assert host.send(reversal).result == "00"
    assert host.send(reversal).result == "00"  # repeated: answered again, not given back twice
    assert host.balance() == OPENING_BALANCE
    assert _total(host.book) == before


def test_a_reversal_that_overtakes_its_payment_stops_it(host: Host) -> None:
    code = host.code()
    assert host.send(_merchant(Kind.REVERSE, "000011")).result == "25"
    late = host.pay(code, 800, stan="000011")
    assert late.result == "12"
    assert host.balance() == OPENING_BALANCE


def test_void_and_refund_by_voucher(host: Host) -> None:
    voucher = host.pay(host.code(), 1000)["A4"]
    assert host.send(_merchant(Kind.REFUND, host.stan(), A4=voucher, AM=300)).result == "00"
    assert host.send(_merchant(Kind.REFUND, host.stan(), A4=voucher, AM=701)).result == "13"
    assert host.send(_merchant(Kind.VOID, host.stan(), A4=voucher)).result == "12"  # partly refunded
    assert host.balance() == OPENING_BALANCE - 700
    other = host.pay(host.code(), 400)["A4"]
    assert host.send(_merchant(Kind.VOID, host.stan(), A4=other)).result == "00"
    assert host.send(_merchant(Kind.VOID, host.stan(), A4=other)).result == "12"  # voided already
    assert host.send(_merchant(Kind.VOID, host.stan(), A4="404")).result == "25"
    assert host.balance() == OPENING_BALANCE - 700


def test_order_qr_paid_by_the_app_and_learned_by_polling(host: Host) -> None:
    created = host.send(_merchant(Kind.ORDER, host.stan(), AM=2500))
    assert created.result == PENDING
    order = order_of_qr(created["QR"])
    assert order == created["QO"]
    query = LinkMessage.of(Kind.QUERY, TI=TERMINAL, QO=order)
    assert host.send(query).result == PENDING
    paid = host.send(LinkMessage.of(Kind.PAY_ORDER, CA="TEST-ALIPAY-1", QO=order))
    assert paid.result == "00"
    answer = host.send(query)
    assert answer.result == "00"
    assert answer["A4"] == paid["A4"]
    assert host.send(LinkMessage.of(Kind.PAY_ORDER, CA=ACCOUNT, QO=order)).result == USED
    assert host.balance("TEST-ALIPAY-1") == OPENING_BALANCE - 2500
    assert host.send(LinkMessage.of(Kind.CANCEL, TI=TERMINAL, QO=order)).result == "12"  # paid: refund instead


def test_an_order_expires_or_is_cancelled(host: Host) -> None:
    expiring = host.send(_merchant(Kind.ORDER, host.stan(), AM=100, QE=30))["QO"]
    cancelled = host.send(_merchant(Kind.ORDER, host.stan(), AM=100))["QO"]
    assert host.send(LinkMessage.of(Kind.CANCEL, TI=TERMINAL, QO=cancelled)).result == "00"
    host.clock.now += 30
    assert host.send(LinkMessage.of(Kind.PAY_ORDER, CA=ACCOUNT, QO=expiring)).result == EXPIRED
    assert host.send(LinkMessage.of(Kind.PAY_ORDER, CA=ACCOUNT, QO=cancelled)).result == "12"
    assert host.send(LinkMessage.of(Kind.QUERY, TI=TERMINAL, QO=expiring)).result == EXPIRED
    assert host.send(_merchant(Kind.ORDER, host.stan(), AM=100, QE=99999)).result == "30"
    assert host.balance() == OPENING_BALANCE


def test_everything_survives_a_restart(host: Host) -> None:
    code = host.code()
    voucher = host.pay(code, 1500, stan="000042")["A4"]
    host.store.close()
    reopened = WalletStore(host.path)
    book = reopened.load()
    assert book.accounts[ACCOUNT].balance == OPENING_BALANCE - 1500
    assert book.codes[code].used
    assert book.payments[voucher].state is PaymentState.PAID
    assert any(key.endswith("000042 1204") for key in book.answered)
    reopened.close()


def test_order_qr_content_is_checked() -> None:
    with pytest.raises(MessageDecodeError):
        order_of_qr("https://example.invalid/pay")
