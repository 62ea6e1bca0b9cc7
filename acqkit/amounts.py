"""Amounts as people type and read them: yuan with up to 2 decimals ↔ minor units (fen)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation


def parse_amount(text: str | None) -> int:
    """``"12.34"`` → ``1234``. Raises ``ValueError`` for anything not a positive amount with ≤ 2 decimals."""
    try:
        value = Decimal(text or "")
    except InvalidOperation:
        raise ValueError(f"amount {text!r} is not a number of yuan like 12.34") from None
    if not value.is_finite() or value <= 0 or value != value.quantize(Decimal("0.01")):
        raise ValueError("amount must be positive with at most 2 decimals")
    return int(value * 100)


def yuan(minor: int) -> str:
    """``1234`` → ``"12.34"``."""
    sign = "-" if minor < 0 else ""
    return f"{sign}{abs(minor) // 100:,}.{abs(minor) % 100:02d}"
