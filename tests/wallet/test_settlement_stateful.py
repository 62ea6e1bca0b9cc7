"""Hypothesis drives the real wallet core and store with payments, voids, refunds, give-back reversals (RVGB),
days passing and settlement runs in any order: money is never made or lost, what the merchant's wallet account
holds plus what its batches took is what it keeps of its payments, a batch is opened once, and the store
reloads to the same batches."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule

from tests.wallet.helpers import ACCOUNT, MERCHANT, TERMINAL, Host
from wallet.model import MERCHANT_ACCOUNT_PREFIX
from wallet.settlement import business_date, payment_net
from wallet.store import WalletStore
from wire.tlvlink import LinkMessage
from wire.walletlink import Kind

AMOUNTS = st.integers(1, 50_000)
DAY_S = 86_400


class SettlementMachine(RuleBasedStateMachine):
    sales = Bundle("sales")
    give_backs = Bundle("give_backs")

    @initialize()
    def open_host(self) -> None:
        self.folder = tempfile.TemporaryDirectory()
        self.host = Host(Path(self.folder.name) / "wallet.sqlite3")
        self.total = self.host.book.total()

    def teardown(self) -> None:
        self.host.store.close()
        self.folder.cleanup()

    def _key(self) -> dict[str, str]:
        return {"TI": TERMINAL, "MI": MERCHANT, "ST": self.host.stan(), "DT": "1204"}

    @rule(target=sales, amount=AMOUNTS, account=st.sampled_from([ACCOUNT, "TEST-WECHAT-1"]))
    def pay(self, amount: int, account: str) -> str:
        return self.host.pay(self.host.code(account), amount).get("A4") or ""

    @rule(target=give_backs, voucher=sales, amount=AMOUNTS, void=st.booleans())
    def give_back(self, voucher: str, amount: int, void: bool) -> dict[str, str]:
        key = self._key()
        kind = Kind.VOID if void else Kind.REFUND
        self.host.send(LinkMessage.of(kind, **key, A4=voucher or "0", AM=None if void else amount))
        return key

    @rule(key=give_backs)
    def undo_give_back(self, key: dict[str, str]) -> None:
        first = self.host.send(LinkMessage.of(Kind.REVERSE_GIVE_BACK, **key))
        assert first.result in ("00", "25")
        before = {a: acc.balance for a, acc in self.host.book.accounts.items()}
        assert self.host.send(LinkMessage.of(Kind.REVERSE_GIVE_BACK, **key)) == first  # once, by its key
        assert {a: acc.balance for a, acc in self.host.book.accounts.items()} == before

    @rule(days=st.integers(0, 2))
    def settle(self, days: int) -> None:
        self.host.clock.now += days * DAY_S
        day = business_date(self.host.clock())
        opened = self.host.send(LinkMessage.of(Kind.SETTLE_OPEN, DA=day))
        assert self.host.send(LinkMessage.of(Kind.SETTLE_OPEN, DA=day)) == opened  # frozen once opened
        for index in range(int(opened["CN"])):
            batch = self.host.send(LinkMessage.of(Kind.SETTLE_BATCH, DA=day, IX=index))
            mark = LinkMessage.of(Kind.SETTLE_MARK, DA=day, WL=batch["WL"], MI=batch["MI"])
            assert self.host.send(mark)["ON"] == "settled"

    @invariant()
    def money_is_never_made_or_lost(self) -> None:
        if hasattr(self, "host"):
            assert self.host.book.total() == self.total

    @invariant()
    def the_merchant_account_and_its_batches_hold_what_it_keeps(self) -> None:
        if hasattr(self, "host"):
            book = self.host.book
            kept = sum(payment_net(p) for p in book.payments.values())
            merchant = book.accounts.get(MERCHANT_ACCOUNT_PREFIX + MERCHANT)
            batched = sum(b.amount for b in book.batches.values())
            assert (merchant.balance if merchant else 0) + batched == kept
            assert batched == sum(book.settled.values())

    @invariant()
    def the_store_reloads_to_the_same_batches(self) -> None:
        if hasattr(self, "host"):
            store = WalletStore(self.host.path)
            try:
                reloaded = store.load()
            finally:
                store.close()
            assert reloaded.batches == self.host.book.batches
            assert reloaded.settled == self.host.book.settled
            assert reloaded.accounts == self.host.book.accounts


SettlementMachine.TestCase.settings = settings(max_examples=15, stateful_step_count=25, deadline=None)
TestSettlement = SettlementMachine.TestCase
