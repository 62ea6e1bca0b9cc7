"""Hypothesis drives the real wallet core and store with payments, retries, reversals, voids and refunds in
any order, beside a simple model: money is never made or lost, no balance goes below zero, a code pays at
most once, and a retried request changes nothing."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule

from tests.wallet.helpers import ACCOUNT, MERCHANT, TERMINAL, Host
from wallet.model import PaymentState
from wire.tlvlink import LinkMessage
from wire.walletlink import Kind

AMOUNTS = st.integers(1, 300_000)


class WalletMachine(RuleBasedStateMachine):
    codes = Bundle("codes")
    stans = Bundle("stans")

    @initialize()
    def open_host(self) -> None:
        self.folder = tempfile.TemporaryDirectory()
        self.host = Host(Path(self.folder.name) / "wallet.sqlite3")
        self.total = self.host.book.total()
        self.next_stan = 0

    def teardown(self) -> None:
        self.host.store.close()
        self.folder.cleanup()

    def _stan(self) -> str:
        self.next_stan += 1
        return f"{self.next_stan:06d}"

    @rule(target=codes, account=st.sampled_from([ACCOUNT, "TEST-WECHAT-1"]))
    def issue(self, account: str) -> str:
        return self.host.code(account)

    @rule(target=stans, code=codes, amount=AMOUNTS)
    def pay(self, code: str, amount: int) -> str:
        stan = self._stan()
        self.host.pay(code, amount, stan=stan)
        return stan

    @rule(stan=stans)
    def retry(self, stan: str) -> None:
        before = {a: acc.balance for a, acc in self.host.book.accounts.items()}
        code = next(iter(self.host.book.codes))  # any code: a retried key ignores the body
        self.host.pay(code, 1, stan=stan)
        assert {a: acc.balance for a, acc in self.host.book.accounts.items()} == before

    @rule(stan=stans)
    def reverse(self, stan: str) -> None:
        self.host.send(LinkMessage.of(Kind.REVERSE, TI=TERMINAL, MI=MERCHANT, ST=stan, DT="1204"))

    @rule(stan=stans, amount=AMOUNTS, void=st.booleans())
    def give_back(self, stan: str, amount: int, void: bool) -> None:
        payment = self.host.book.payment_by_key(f"PAYC {TERMINAL} {stan} 1204")
        if payment is None:
            return
        values: dict[str, str | int] = {"A4": payment.voucher}
        if not void:
            values["AM"] = amount
        self.host.send(
            LinkMessage.of(
                Kind.VOID if void else Kind.REFUND, TI=TERMINAL, MI=MERCHANT, ST=self._stan(), DT="1204", **values
            )
        )

    @invariant()
    def money_is_never_made_or_lost(self) -> None:
        if hasattr(self, "host"):
            assert self.host.book.total() == self.total

    @invariant()
    def no_balance_below_zero(self) -> None:
        if hasattr(self, "host"):
            assert all(account.balance >= 0 for account in self.host.book.accounts.values())

    @invariant()
    def each_request_pays_once_and_the_merchant_holds_what_was_paid(self) -> None:
        if hasattr(self, "host"):
            keys = [p.key for p in self.host.book.payments.values() if p.state is not PaymentState.DECLINED]
            assert len(keys) == len(set(keys))
            merchant = self.host.book.accounts.get("MERCHANT:" + MERCHANT)
            given = sum(p.amount - p.refunded for p in self.host.book.payments.values() if p.state is PaymentState.PAID)
            assert (merchant.balance if merchant else 0) == given


WalletMachine.TestCase.settings = settings(max_examples=15, stateful_step_count=20, deadline=None)
TestWallet = WalletMachine.TestCase
