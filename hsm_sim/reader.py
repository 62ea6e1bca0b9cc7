"""Reads the fixed and delimited fields of an HSM command, raising error 15 with the offset on bad input."""

from __future__ import annotations

from hsm_sim.errors import CommandError, ErrorCode
from hsm_sim.keys import KEY_HEX_LEN, KEY_SCHEME_DOUBLE

_HEX_DIGITS = "0123456789ABCDEFabcdef"


class FieldReader:
    def __init__(self, data: bytes, *, base_offset: int = 0) -> None:
        self._data = data
        self._pos = 0
        self._base = base_offset

    @property
    def offset(self) -> int:
        return self._base + self._pos

    def _fail(self, what: str) -> CommandError:
        return CommandError(ErrorCode.INVALID_INPUT, f"{what} at offset {self.offset}")

    def raw(self, length: int, what: str) -> bytes:
        if self._pos + length > len(self._data):
            raise self._fail(f"{what}: command too short")
        out = self._data[self._pos : self._pos + length]
        self._pos += length
        return out

    def marker(self, marker: str) -> bool:
        """Consume ``marker`` if the fields go on with it (an optional leading flag); say whether they did."""
        token = marker.encode("ascii")
        if self._data.startswith(token, self._pos):
            self._pos += len(token)
            return True
        return False

    def text(self, length: int, what: str) -> str:
        # raw() and a decode inlined: the commands read a dozen short fields each, on the HSM's hot path.
        start = self._pos
        end = start + length
        if end > len(self._data):
            raise self._fail(f"{what}: command too short")
        chunk = self._data[start:end]
        self._pos = end
        if not chunk.isascii():
            raise self._fail(f"{what}: not ASCII")
        return chunk.decode("ascii")

    def digits(self, length: int, what: str) -> str:
        value = self.text(length, what)
        if not value.isdigit():
            raise self._fail(f"{what}: not decimal")
        return value

    def hex(self, length: int, what: str) -> str:
        value = self.text(length, what)
        if value.strip(_HEX_DIGITS):  # what is left once hex digits are stripped from both ends
            raise self._fail(f"{what}: not hex")
        return value.upper()

    def choice(self, options: str, what: str) -> str:
        value = self.text(1, what)
        if value not in options:
            raise self._fail(f"{what}: {value!r} is not one of {options!r}")
        return value

    def key(self, what: str) -> str:
        scheme = self.text(1, what)
        if scheme != KEY_SCHEME_DOUBLE:
            raise self._fail(f"{what}: key scheme must be {KEY_SCHEME_DOUBLE}")
        return scheme + self.hex(KEY_HEX_LEN, what)

    def rest(self) -> bytes:
        out = self._data[self._pos :]
        self._pos = len(self._data)
        return out

    def end(self) -> None:
        if self._pos != len(self._data):
            raise self._fail("unexpected trailing data")
