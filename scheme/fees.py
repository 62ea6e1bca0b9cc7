"""The fee table (PROTOCOL.md §10 defaults; docs/clearing.md): interchange and the network fee per transaction.

For a purchase of amount A (fen) on a card of type t:

- interchange (the issuer's fee, paid by the acquirer) = A × rate(t), rounded half up to the fen, then capped
  at cap(t): debit 0.35 % capped at 13.00 CNY (1300 fen), credit 0.45 % without a cap;
- network fee = A × 0.065 %, in two halves: each half = A × 0.0325 % rounded half up to the fen and capped at
  3.25 CNY (325 fen); the issuer side pays one half, the acquirer side the other.

Refunds carry interchange back (computed on the refund amount by the same rule) and no network fee.
Rounding is per transaction and per component, never on a day's total, so a clearing line can be checked
alone. The member's net for one line (positive: the switch pays the member):

    acquirer, purchase:   A − interchange − network(acquirer half)
    issuer, purchase:   −(A − interchange + network(issuer half))
    acquirer, refund:   −(A − interchange)
    issuer, refund:       A − interchange

so for every line the issuer's and the acquirer's nets and the switch's network income sum to zero.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Final

from wire.clearingfile import CardType, Kind

DEFAULT_ISSUER_RATES: Final[Mapping[CardType, Decimal]] = {
    CardType.DEBIT: Decimal("0.0035"),
    CardType.CREDIT: Decimal("0.0045"),
}
DEFAULT_ISSUER_CAPS: Final[Mapping[CardType, int | None]] = {CardType.DEBIT: 1300, CardType.CREDIT: None}
DEFAULT_NETWORK_RATE: Final = Decimal("0.00065")
DEFAULT_NETWORK_SIDE_CAP: Final = 325


def _round_fen(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Fees:
    amount: int
    kind: Kind
    interchange: int
    network_issuer: int
    network_acquirer: int

    @property
    def acquirer_net(self) -> int:
        """What the switch pays the acquirer for this line (negative: the acquirer pays)."""
        if self.kind is Kind.PURCHASE:
            return self.amount - self.interchange - self.network_acquirer
        return -(self.amount - self.interchange)

    @property
    def issuer_net(self) -> int:
        """What the switch pays the issuer for this line (negative: the issuer pays)."""
        if self.kind is Kind.PURCHASE:
            return -(self.amount - self.interchange + self.network_issuer)
        return self.amount - self.interchange

    @property
    def switch_income(self) -> int:
        return self.network_issuer + self.network_acquirer


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class FeeTable:
    issuer_rates: Mapping[CardType, Decimal] = dataclasses.field(default_factory=lambda: dict(DEFAULT_ISSUER_RATES))
    issuer_caps: Mapping[CardType, int | None] = dataclasses.field(default_factory=lambda: dict(DEFAULT_ISSUER_CAPS))
    network_rate: Decimal = DEFAULT_NETWORK_RATE
    network_side_cap: int = DEFAULT_NETWORK_SIDE_CAP

    def fees(self, amount: int, card_type: CardType, kind: Kind = Kind.PURCHASE) -> Fees:
        if amount <= 0:
            raise ValueError("a cleared amount is positive")
        interchange = _round_fen(Decimal(amount) * self.issuer_rates[card_type])
        cap = self.issuer_caps[card_type]
        if cap is not None:
            interchange = min(interchange, cap)
        half = 0
        if kind is Kind.PURCHASE:
            half = min(_round_fen(Decimal(amount) * self.network_rate / 2), self.network_side_cap)
        return Fees(amount=amount, kind=kind, interchange=interchange, network_issuer=half, network_acquirer=half)
