"""The switch's BIN table: the longest matching PAN prefix names the issuer and the card type."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Final

from wire.clearingfile import CardType
from wire.switchlink import INSTITUTION_ID_LEN

#: A BIN is 6 digits, longer prefixes (up to 12) narrow a range to one issuer's product.
MIN_PREFIX_LEN: Final = 6
MAX_PREFIX_LEN: Final = 12


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class BinRange:
    prefix: str
    issuer_id: str  # 8 digits: institution 4 ‖ region 4
    card_type: CardType

    def __post_init__(self) -> None:
        if not self.prefix.isdigit() or not MIN_PREFIX_LEN <= len(self.prefix) <= MAX_PREFIX_LEN:
            raise ValueError(f"a BIN prefix is {MIN_PREFIX_LEN} to {MAX_PREFIX_LEN} digits")
        if len(self.issuer_id) != INSTITUTION_ID_LEN or not self.issuer_id.isdigit():
            raise ValueError(f"an issuer id is {INSTITUTION_ID_LEN} digits")


class BinTable:
    def __init__(self, ranges: Iterable[BinRange]) -> None:
        self._by_prefix: dict[str, BinRange] = {}
        for entry in ranges:
            if entry.prefix in self._by_prefix:
                raise ValueError(f"BIN prefix {entry.prefix} listed twice")
            self._by_prefix[entry.prefix] = entry
        self._lengths = sorted({len(p) for p in self._by_prefix}, reverse=True)

    def route(self, pan: str) -> BinRange | None:
        """The range of the longest prefix of ``pan`` in the table, or ``None`` (an unknown BIN)."""
        for length in self._lengths:
            found = self._by_prefix.get(pan[:length])
            if found is not None and len(pan) > length:
                return found
        return None

    def ranges(self) -> list[BinRange]:
        return sorted(self._by_prefix.values(), key=lambda r: r.prefix)
