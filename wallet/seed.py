"""TEST wallet accounts: one per wallet, each with the TEST wallet password (test material only)."""

from __future__ import annotations

from typing import Final

from wallet.codes import hash_password
from wallet.model import Account, WalletBook
from wire.field59 import Wallet

#: The TEST wallet password of every seeded account (what ``acqsim wallet confirm`` sends by default).
TEST_PASSWORD: Final = "123456"  # noqa: S105 - documented TEST material
OPENING_BALANCE: Final = 500_000  # 5,000.00 CNY
#: account id → wallet
TEST_ACCOUNTS: Final[dict[str, Wallet]] = {
    "TEST-UNIONPAY-1": Wallet.UNIONPAY,
    "TEST-WECHAT-1": Wallet.WECHAT,
    "TEST-ALIPAY-1": Wallet.ALIPAY,
}
DEFAULT_ACCOUNT: Final = "TEST-UNIONPAY-1"


def seed_accounts(book: WalletBook) -> tuple[Account, ...]:
    """The TEST accounts ``book`` lacks, with their opening balances (money the wallet brings in from
    outside its books: the book's total grows by exactly these)."""
    return tuple(
        Account(
            account_id=account_id, wallet=wallet, balance=OPENING_BALANCE, password_hash=hash_password(TEST_PASSWORD)
        )
        for account_id, wallet in TEST_ACCOUNTS.items()
        if account_id not in book.accounts
    )
