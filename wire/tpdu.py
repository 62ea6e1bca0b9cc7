"""The 5-byte TPDU that heads every POS-link frame (PROTOCOL.md §1).

``ID`` (0x60) ‖ ``DST`` (2 bytes) ‖ ``SRC`` (2 bytes). Addresses are written as 4 upper-case hex digits
(``"0003"``), the way routing tables and traces name them.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Final

from wire.errors import TpduError

TPDU_LEN: Final = 5
TPDU_ID: Final = 0x60
#: What a terminal puts in SRC; the NAC replaces it with a return address of its own.
TERMINAL_SRC: Final = "0000"
#: acqsim's default front-end route.
DEFAULT_ROUTE: Final = "0003"
_HEX_DIGITS: Final = frozenset("0123456789ABCDEF")


def _check_address(name: str, value: str) -> None:
    if len(value) != 4 or not _HEX_DIGITS.issuperset(value):
        raise ValueError(f"TPDU {name} must be 4 upper-case hex digits, not {value!r}")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Tpdu:
    dst: str
    src: str
    id: int = TPDU_ID

    def __post_init__(self) -> None:
        _check_address("dst", self.dst)
        _check_address("src", self.src)
        if not 0 <= self.id <= 0xFF:
            raise ValueError(f"TPDU id must be one byte, not {self.id}")

    @classmethod
    def parse(cls, data: bytes, *, offset: int = 0) -> Tpdu:
        """Read the TPDU at ``data[offset:]``; ``offset`` also names the place in errors."""
        _check_head(data, offset)
        return _parsed(bytes(data[offset : offset + TPDU_LEN]))

    def to_bytes(self) -> bytes:
        return bytes([self.id]) + bytes.fromhex(self.dst) + bytes.fromhex(self.src)

    def swapped(self) -> Tpdu:
        """The TPDU of the answer: destination and source exchanged."""
        return _checked_already(self.id, dst=self.src, src=self.dst)

    def with_src(self, src: str) -> Tpdu:
        return Tpdu(id=self.id, dst=self.dst, src=src)

    def with_dst(self, dst: str) -> Tpdu:
        return Tpdu(id=self.id, dst=dst, src=self.src)


def _check_head(data: bytes, offset: int) -> None:
    """:class:`TpduError` unless a TPDU (5 bytes, ID 0x60) starts at ``data[offset:]``."""
    if len(data) - offset < TPDU_LEN:
        raise TpduError(f"need {TPDU_LEN} TPDU bytes, have {max(0, len(data) - offset)}", offset=offset)
    tpdu_id = data[offset]
    if tpdu_id != TPDU_ID:
        raise TpduError(f"TPDU ID is 0x{tpdu_id:02X}, expected 0x{TPDU_ID:02X}", offset=offset)


# The NAC rewrites a TPDU on every frame it relays; these do it on the frame's bytes (the same result as a
# Tpdu's ``with_src``/``swapped``/``dst``, without building one and checking its addresses as text again).


def destination(frame: bytes) -> int:
    """DST of the TPDU heading ``frame``, as a number (the NAC's return address on an answer). Raises
    :class:`TpduError` as :meth:`Tpdu.parse` does."""
    _check_head(frame, 0)
    return (frame[1] << 8) | frame[2]


def with_source(frame: bytes, address: int) -> bytes:
    """``frame`` (its TPDU checked) with SRC set to ``address`` (0–0xFFFF): a request given its return address."""
    return frame[:3] + address.to_bytes(2, "big") + frame[TPDU_LEN:]


def answer_head(frame: bytes) -> bytes:
    """The TPDU bytes heading the answer to ``frame`` (its TPDU checked): DST and SRC exchanged."""
    return frame[0:1] + frame[3:5] + frame[1:3]


#: Distinct TPDUs kept parsed: a link sees few (one route, a source address per connection).
PARSED_CACHE_SIZE: Final = 4096


@functools.lru_cache(maxsize=PARSED_CACHE_SIZE)
def _parsed(raw: bytes) -> Tpdu:
    """The (immutable) TPDU of these 5 bytes, whose ID was checked: parsed once, shared after."""
    return _checked_already(raw[0], dst=raw[1:3].hex().upper(), src=raw[3:5].hex().upper())


def _checked_already(tpdu_id: int, *, dst: str, src: str) -> Tpdu:
    """A :class:`Tpdu` of parts that cannot fail its checks (a byte's hex digits, another Tpdu's addresses),
    built without running them again: the front-end parses one per request and swaps it for the answer."""
    made = object.__new__(Tpdu)
    object.__setattr__(made, "id", tpdu_id)
    object.__setattr__(made, "dst", dst)
    object.__setattr__(made, "src", src)
    return made
