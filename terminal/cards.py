"""Virtual test cards: Luhn check digits, track 2 with the Visa PVV, and issuing new ones."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Final

from acqkit.config import CardFixture
from wire.paycrypto import visa_pvv

#: The BIN acqsim's own test cards use. Test cards only.
TEST_BIN: Final = "620000"
PAN_LENGTH: Final = 16


def luhn_check_digit(partial: str) -> str:
    """The digit that makes ``partial + digit`` pass the Luhn check."""
    total = 0
    for index, char in enumerate(reversed(partial)):
        digit = int(char)
        if index % 2 == 0:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return str((10 - total % 10) % 10)


def luhn_valid(pan: str) -> bool:
    return pan.isdigit() and len(pan) >= 12 and luhn_check_digit(pan[:-1]) == pan[-1]


def issue_cards(
    count: int, *, pvk: bytes, balance: int, expiry: str = "3012", pvki: str = "1", taken: set[str] | None = None
) -> Iterator[CardFixture]:
    """New TEST cards with random account numbers, random 6-digit PINs and their PVVs under ``pvk``."""
    seen = set(taken or ())
    made = 0
    while made < count:
        body = TEST_BIN + "".join(secrets.choice("0123456789") for _ in range(PAN_LENGTH - len(TEST_BIN) - 1))
        pan = body + luhn_check_digit(body)
        if pan in seen:
            continue
        seen.add(pan)
        pin = "".join(secrets.choice("0123456789") for _ in range(6))
        made += 1
        yield CardFixture(
            pan=pan,
            expiry=expiry,
            pin=pin,
            pvv=visa_pvv(pvk, pan, pvki, pin),
            pvki=pvki,
            balance=balance,
            holder="TEST CARDHOLDER",
            note="issued by acqsim cards issue",
        )
