"""The 6-byte (12 BCD digit) CUP POS message header that follows the TPDU (PROTOCOL.md §1).

application type (2) ‖ software version (2) ‖ terminal status (1) ‖ processing request (1) ‖ reserved (6)
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Final

from wire.errors import HeaderError

HEADER_LEN: Final = 6

APP_MAGSTRIPE_POS: Final = "60"
APP_CHIP_POS: Final = "61"
APP_MPOS: Final = "67"
#: Application types the host accepts.
KNOWN_APP_TYPES: Final = frozenset({APP_MAGSTRIPE_POS, APP_CHIP_POS, APP_MPOS})
SOFTWARE_VERSION: Final = "31"

TERMINAL_STATUS_LIVE: Final = 0
TERMINAL_STATUS_TEST: Final = 1

#: Processing request (in answers the host uses it to ask the terminal for work).
PROCESSING_NONE: Final = 0
PROCESSING_SIGN_ON_AGAIN: Final = 3

RESERVED: Final = "000000"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class PosHeader:
    app_type: str = APP_CHIP_POS
    software_version: str = SOFTWARE_VERSION
    terminal_status: int = TERMINAL_STATUS_LIVE
    processing_request: int = PROCESSING_NONE
    reserved: str = RESERVED

    def __post_init__(self) -> None:
        for name, value, width in (
            ("app_type", self.app_type, 2),
            ("software_version", self.software_version, 2),
            ("reserved", self.reserved, 6),
        ):
            if len(value) != width or not value.isdigit():
                raise ValueError(f"header {name} must be {width} digits, not {value!r}")
        for name, digit in (("terminal_status", self.terminal_status), ("processing_request", self.processing_request)):
            if not 0 <= digit <= 9:
                raise ValueError(f"header {name} must be one digit, not {digit}")

    @classmethod
    def parse(cls, data: bytes, *, offset: int = 0) -> PosHeader:
        """Read the header at ``data[offset:]``."""
        if len(data) - offset < HEADER_LEN:
            raise HeaderError(f"need {HEADER_LEN} header bytes, have {max(0, len(data) - offset)}", offset=offset)
        digits = data[offset : offset + HEADER_LEN].hex()
        if not digits.isdigit():
            bad = next(i for i, c in enumerate(digits) if not c.isdigit())
            raise HeaderError("header is not BCD", offset=offset + bad // 2)
        return _parsed(digits)

    def to_bytes(self) -> bytes:
        return bytes.fromhex(
            f"{self.app_type}{self.software_version}{self.terminal_status}{self.processing_request}{self.reserved}"
        )

    def with_processing_request(self, request: int) -> PosHeader:
        """This header asking for ``request``: itself when it already does (most answers: no copy made)."""
        if request == self.processing_request:
            return self
        return dataclasses.replace(self, processing_request=request)


#: Distinct headers kept parsed: a link sees a handful (application types × processing requests).
PARSED_CACHE_SIZE: Final = 256


@functools.lru_cache(maxsize=PARSED_CACHE_SIZE)
def _parsed(digits: str) -> PosHeader:
    """The (immutable) header of these 12 BCD digits: parsed once, shared after."""
    return PosHeader(
        app_type=digits[0:2],
        software_version=digits[2:4],
        terminal_status=int(digits[4]),
        processing_request=int(digits[5]),
        reserved=digits[6:12],
    )
