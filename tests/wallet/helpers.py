"""A wallet host on a real SQLite store, a settable clock, and requests as the front-end and the app send them."""

from __future__ import annotations

import itertools
from pathlib import Path

from wallet.core import Decision, WalletCore
from wallet.model import WalletBook
from wallet.seed import seed_accounts
from wallet.store import WalletStore
from wire.tlvlink import LinkMessage
from wire.walletlink import Kind

TERMINAL = "10000001"
MERCHANT = "100000000000001"
ACCOUNT = "TEST-UNIONPAY-1"


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Host:
    """The core and its store, as the server drives them: decide, commit, apply."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.store = WalletStore(path)
        book = self.store.load()
        opening = seed_accounts(book)
        self.store.commit(opening)
        book.apply(opening)
        self.core = WalletCore(book)
        self.clock = Clock()
        self._stan = itertools.count(1)

    @property
    def book(self) -> WalletBook:
        return self.core.book

    def send(self, message: LinkMessage) -> LinkMessage:
        decision: Decision = self.core.decide(message, self.clock())
        self.store.commit(decision.records)
        self.book.apply(decision.records)
        return decision.answer

    def stan(self) -> str:
        return f"{next(self._stan):06d}"

    def code(self, account: str = ACCOUNT) -> str:
        return self.send(LinkMessage.of(Kind.CODE, CA=account))["A3"]

    def pay(self, code: str, amount: int, stan: str | None = None) -> LinkMessage:
        return self.send(
            LinkMessage.of(Kind.PAY, TI=TERMINAL, MI=MERCHANT, ST=stan or self.stan(), DT="1204", AM=amount, A3=code)
        )

    def balance(self, account: str = ACCOUNT) -> int:
        return self.book.accounts[account].balance
