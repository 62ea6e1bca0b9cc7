"""CUP track data encryption under the track data key (TDK), PROTOCOL.md §8.

A terminal that encrypts tracks sets field 53 to ``2610000000000000`` (``SECURITY_CONTROL_FORMAT0_TDES_TDK``). The
track is written as hex digits (``=`` → ``D``); the 16 digits that end one digit before the end (odd digit
count) or two digits before the end (even count) are TDES-ECB encrypted under the TDK and put back in place,
so the PAN's head, the length and the last digit or two stay clear. acqsim refuses a track too short to hold
a whole block and its tail (:data:`MIN_TRACK_DIGITS`); a real track 2 is at least 21 digits (13-digit PAN,
separator, expiry, service code). The encrypted digits may be any hex digit.

In a POS message dict (:mod:`wire.codec`) every nibble ``D`` is written ``=``, the encrypted block's too:
:func:`encrypt_track_field` gives that form, and :class:`EncryptedTrack` splits it so that the block alone can
be sent to the HSM (the front-end never holds the TDK in clear).
"""

from __future__ import annotations

import dataclasses
from typing import Final

from wire.paycrypto import CryptoInputError, tdes_ecb_decrypt, tdes_ecb_encrypt

BLOCK_DIGITS: Final = 16
MIN_TRACK_DIGITS: Final = BLOCK_DIGITS + 1
SEPARATOR: Final = "="
SEPARATOR_NIBBLE: Final = "D"
_HEX: Final = frozenset("0123456789ABCDEF")


def _block_span(digits: str) -> slice:
    if len(digits) < MIN_TRACK_DIGITS or (len(digits) % 2 == 0 and len(digits) < MIN_TRACK_DIGITS + 1):
        raise CryptoInputError(f"track must be at least {MIN_TRACK_DIGITS} digits to encrypt")
    end = len(digits) - (1 if len(digits) % 2 else 2)
    return slice(end - BLOCK_DIGITS, end)


def _as_nibbles(track: str) -> str:
    digits = track.upper().replace(SEPARATOR, SEPARATOR_NIBBLE)
    if not set(digits) <= _HEX:
        raise CryptoInputError("track must be hex digits and '='")
    return digits


def encrypt_track(tdk: bytes, track: str) -> str:
    """``track`` (digits and ``=``) with its block encrypted; the result is hex digits (``D`` for ``=``)."""
    digits = _as_nibbles(track)
    span = _block_span(digits)
    block = tdes_ecb_encrypt(tdk, bytes.fromhex(digits[span])).hex().upper()
    return digits[: span.start] + block + digits[span.stop :]


def decrypt_track(tdk: bytes, encrypted: str) -> str:
    """The clear track (``=`` as separator) from :func:`encrypt_track`'s output."""
    digits = _as_nibbles(encrypted)
    span = _block_span(digits)
    block = tdes_ecb_decrypt(tdk, bytes.fromhex(digits[span])).hex().upper()
    return (digits[: span.start] + block + digits[span.stop :]).replace(SEPARATOR_NIBBLE, SEPARATOR)


def encrypt_track_field(tdk: bytes, track: str) -> str:
    """:func:`encrypt_track` in the form field 35 / 36 takes in a message dict (nibble ``D`` written ``=``)."""
    return encrypt_track(tdk, track).replace(SEPARATOR_NIBBLE, SEPARATOR)


@dataclasses.dataclass(frozen=True, slots=True)
class EncryptedTrack:
    """An encrypted track field cut around its encrypted block: the clear head and tail stay as they came."""

    head: str
    block: bytes = dataclasses.field(repr=False)
    tail: str

    @classmethod
    def split(cls, field_value: str) -> EncryptedTrack:
        """Raises :class:`CryptoInputError` for a value too short to hold a block or not in hex digits."""
        digits = _as_nibbles(field_value)
        span = _block_span(digits)
        return cls(head=digits[: span.start], block=bytes.fromhex(digits[span]), tail=digits[span.stop :])

    def with_clear_block(self, clear_block: bytes) -> str:
        """The track with ``clear_block`` (the HSM's decryption of :attr:`block`) in place, ``=`` as separator:
        a wrong key gives hex digits other than ``D``, which the caller's track check refuses."""
        return (self.head + clear_block.hex().upper() + self.tail).replace(SEPARATOR_NIBBLE, SEPARATOR)
