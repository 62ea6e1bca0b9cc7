"""What every app module of the merchant platform returns, and what it is given."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Container

from merchant.model import MerchantBook, Record
from wire.tlvlink import LinkMessage


@dataclasses.dataclass(frozen=True, slots=True)
class Decision:
    answer: LinkMessage
    records: tuple[Record, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class Context:
    book: MerchantBook
    now: float
    #: ``numbers(n)``: n random digits (codes, booking and member numbers).
    numbers: Callable[[int], str]

    def fresh(self, digits: int, taken: Container[str]) -> str:
        """A number of ``digits`` digits not yet in ``taken``."""
        while (candidate := self.numbers(digits)) in taken:
            pass
        return candidate
