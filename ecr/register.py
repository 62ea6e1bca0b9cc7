"""The till, sans-IO: items rung up, a coupon's discount, the reference each sale travels under, the slip."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Final

from acqkit.amounts import parse_amount, yuan
from acqkit.numbers import new_number

#: ``name:price`` or ``name:pricexQTY`` (``coffee:12.00x2``).
PRICE_SEPARATOR: Final = ":"
QUANTITY_SEPARATOR: Final = "x"
MAX_QUANTITY: Final = 999
REFERENCE_DIGITS: Final = 12


@dataclasses.dataclass(frozen=True, slots=True)
class Item:
    name: str
    quantity: int
    unit_price: int

    @property
    def amount(self) -> int:
        return self.quantity * self.unit_price


def parse_item(text: str) -> Item:
    """``"coffee:12.00x2"`` → ``Item("coffee", 2, 1200)``; ``ValueError`` says what is wrong."""
    name, sep, rest = text.rpartition(PRICE_SEPARATOR)
    if not sep or not name:
        raise ValueError(f"item {text!r}: write NAME:PRICE or NAME:PRICExQTY")
    price, _, quantity = rest.partition(QUANTITY_SEPARATOR)
    count = int(quantity) if quantity.isdigit() else (1 if not quantity else 0)
    if not 1 <= count <= MAX_QUANTITY:
        raise ValueError(f"item {text!r}: quantity must be 1..{MAX_QUANTITY}")
    return Item(name.strip(), count, parse_amount(price))


@dataclasses.dataclass(frozen=True, slots=True)
class Basket:
    items: tuple[Item, ...]
    reference: str
    discount: int = 0
    #: Charged without items (``acqsim ecr sale 12.34``).
    open_amount: int = 0

    @property
    def subtotal(self) -> int:
        return self.open_amount + sum(item.amount for item in self.items)

    @property
    def total(self) -> int:
        return max(self.subtotal - self.discount, 0)

    def with_discount(self, discount: int) -> Basket:
        return dataclasses.replace(self, discount=min(discount, self.subtotal))

    def item_triples(self) -> tuple[tuple[str, int, int], ...]:
        return tuple((item.name, item.quantity, item.unit_price) for item in self.items)


def new_reference(till_id: str) -> str:
    """A till reference, unique per till: ``<till id>-<12 random digits>`` (at most 20 characters)."""
    return f"{till_id[:7]}-{new_number(REFERENCE_DIGITS)}"


def ring_up(items: list[str], *, amount: str | None, till_id: str) -> Basket:
    """A basket from item texts and/or an open amount (in yuan); ``ValueError`` if it would be empty."""
    basket = Basket(
        items=tuple(parse_item(text) for text in items),
        reference=new_reference(till_id),
        open_amount=parse_amount(amount) if amount else 0,
    )
    if basket.subtotal <= 0:
        raise ValueError("nothing rung up: give an amount or --item NAME:PRICE")
    return basket


def slip(basket: Basket, *, method: str, result: str, when: dt.datetime, detail: str = "") -> str:
    """The till's printed slip (card details come masked from the terminal)."""
    lines = [f"TILL SLIP  {when:%Y-%m-%d %H:%M:%S}  ref {basket.reference}"]
    lines += [
        f"  {item.name:<20} {item.quantity:>3} x {yuan(item.unit_price):>9}  {yuan(item.amount):>10}"
        for item in basket.items
    ]
    if basket.open_amount:
        lines.append(f"  {'(open amount)':<35}  {yuan(basket.open_amount):>10}")
    if basket.discount:
        lines.append(f"  {'coupon':<35} -{yuan(basket.discount):>10}")
    lines.append(f"  {'TOTAL CNY':<35}  {yuan(basket.total):>10}")
    lines.append(f"  paid by {method}: {result}" + (f"  {detail}" if detail else ""))
    return "\n".join(lines)
