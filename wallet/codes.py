"""One-time payment codes and the other numbers the wallet host hands out.

A payment code is 19 digits: the wallet's 2-digit prefix (PROTOCOL.md §9) and 17 random digits. It lives
``CODE_LIFETIME_S`` and pays once, as wallet apps refresh their code every minute.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Final

from acqkit.numbers import new_number
from wire.field59 import PAYMENT_CODE_DIGITS, WALLET_PREFIXES, Wallet

CODE_LIFETIME_S: Final = 60.0
#: How long an order QR stays payable unless the terminal asks otherwise (``QE``), and the longest allowed.
ORDER_LIFETIME_S: Final = 300
MAX_ORDER_LIFETIME_S: Final = 3600
#: A payment above this many minor units waits for the consumer's password (small payments go through
#: without one, as wallets allow): 1,000.00 CNY.
NO_PASSWORD_LIMIT: Final = 100_000
#: How long a payment may wait for the password before it is closed.
PENDING_LIFETIME_S: Final = 120.0
VOUCHER_DIGITS: Final = 20
ORDER_DIGITS: Final = 20
SALT_BYTES: Final = 16


def new_code(wallet: Wallet) -> str:
    prefix = secrets.choice(WALLET_PREFIXES[wallet])
    return prefix + new_number(PAYMENT_CODE_DIGITS - len(prefix))


def hash_password(password: str, salt: bytes | None = None) -> str:
    """salt ‖ scrypt(password), hex. TEST wallet passwords only; the clear password is never stored."""
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    return salt.hex() + hashlib.scrypt(password.encode(), salt=salt, n=2**12, r=8, p=1, dklen=32).hex()


def password_matches(password: str, stored: str) -> bool:
    if len(stored) < 2 * SALT_BYTES:
        return False
    return hmac.compare_digest(hash_password(password, bytes.fromhex(stored[: 2 * SALT_BYTES])), stored)
