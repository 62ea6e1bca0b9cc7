"""Random decimal numbers for codes, vouchers, orders and members (``secrets``: not guessable)."""

from __future__ import annotations

import secrets


def new_number(digits: int) -> str:
    """``digits`` random decimal digits."""
    return "".join(secrets.choice("0123456789") for _ in range(digits))
