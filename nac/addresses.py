"""The pool of 2-byte return addresses the NAC writes into SRC on the way up.

``0000`` is what terminals send as their own SRC and is never assigned. Addresses come out fresh first,
then least recently released first, so a released address is reused as late as possible (the router's
bookkeeping, not this order, is what keeps a late answer away from another terminal).
"""

from __future__ import annotations

import collections
from typing import Final

FIRST_ADDRESS: Final = 0x0001
LAST_ADDRESS: Final = 0xFFFF


class ReturnAddressPool:
    def __init__(self, size: int = LAST_ADDRESS) -> None:
        if not 0 < size <= LAST_ADDRESS:
            raise ValueError(f"pool size must be 1..{LAST_ADDRESS}, not {size}")
        self._end = FIRST_ADDRESS + size  # one past the last address of this pool
        self._next_fresh = FIRST_ADDRESS
        self._released: collections.deque[int] = collections.deque()
        self._in_use = 0

    @property
    def in_use(self) -> int:
        return self._in_use

    @property
    def available(self) -> int:
        return (self._end - self._next_fresh) + len(self._released)

    def allocate(self) -> int | None:
        """A free address, or ``None`` when every address is in use."""
        if self._next_fresh < self._end:
            address = self._next_fresh
            self._next_fresh += 1
        elif self._released:
            address = self._released.popleft()
        else:
            return None
        self._in_use += 1
        return address

    def release(self, address: int) -> None:
        if not FIRST_ADDRESS <= address < self._end:
            raise ValueError(f"address {address:04X} is not from this pool")
        self._released.append(address)
        self._in_use -= 1
