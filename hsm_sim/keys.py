"""Keys under the Local Master Key (LMK), variant method.

Every key outside the HSM travels as ``U`` + 32 hex: the double-length key encrypted (TDES ECB) under the LMK
with the key type's *variant* XORed into the LMK's first byte. Decrypting under the wrong type's variant gives
a key that fails the odd-parity check, so a key of the wrong type is refused (error 10/11) — the same way a
payShield variant LMK catches type confusion.

acqsim key type codes and variants (payShield shares code 002 between TMK, TPK and PVK; acqsim gives each
its own variant so confusing them is always refused):

    ZMK 000 A6 | ZPK 001 5A | TPK 002 6A | TAK 003 DE | ZAK 008 7E | TMK 102 2B | PVK 202 50
    MK-AC 109 3C (issuer master key for application cryptograms, "IMK-AC") | BDK 009 9C (DUKPT base
    derivation key, TDES or AES-128) | TDK 011 C6 (CUP track data key; acqsim's own code) | HMK 012 B4 (a
    terminal's merchant-link HMAC key, M6/M8 algorithm H; acqsim's own code)

A ZAK (zone authentication key, payShield code 008) MACs a zone link such as the scheme switch link; a ZPK
carries PIN blocks across a zone (acquirer → switch → issuer).

The default TEST LMK is ``TEST_LMK_HEX`` below (test material only); its check value is printed by
``acqsim hsm`` and answered by the NC command.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
from typing import Final

from wire.paycrypto import (
    CryptoInputError,
    has_odd_parity,
    key_check_value,
    tdes_ecb_decrypt,
    tdes_ecb_encrypt,
)

KEY_SCHEME_DOUBLE: Final = "U"
KEY_HEX_LEN: Final = 32
#: TEST LMK (double length, odd parity). Test material only.
TEST_LMK_HEX: Final = "0E1F2C3D4A5B6879E9D9C7B6A4948373"


class KeyType(enum.StrEnum):
    ZMK = "ZMK"
    ZPK = "ZPK"
    TPK = "TPK"  # terminal PIN key, the POS "PIK"
    TAK = "TAK"  # terminal MAC key, the POS "MAK"
    ZAK = "ZAK"  # zone MAC key: the scheme switch link (PROTOCOL.md §10)
    TMK = "TMK"
    PVK = "PVK"
    MK_AC = "IMK"  # the issuer's IMK-AC (payShield type MK-AC): card master keys derive from it (option A)
    BDK = "BDK"  # DUKPT base derivation key
    TDK = "TDK"  # track data key (PROTOCOL.md §8)
    HMK = "HMK"  # a terminal's merchant-link HMAC key (docs/smartpos.md, "Authentication"): MACs only

    @property
    def code(self) -> str:
        return _CODES[self]

    @property
    def variant(self) -> int:
        return _VARIANTS[self]

    @classmethod
    def from_code(cls, code: str) -> KeyType:
        for key_type, key_code in _CODES.items():
            if key_code == code:
                return key_type
        raise KeyError(code)


_CODES: Final = {
    KeyType.ZMK: "000",
    KeyType.ZPK: "001",
    KeyType.TPK: "002",
    KeyType.TAK: "003",
    KeyType.ZAK: "008",
    KeyType.TMK: "102",
    KeyType.PVK: "202",
    KeyType.MK_AC: "109",
    KeyType.BDK: "009",
    KeyType.TDK: "011",
    KeyType.HMK: "012",  # acqsim's code (payShield names HMAC keys in key blocks)
}
_VARIANTS: Final = {
    KeyType.ZMK: 0xA6,
    KeyType.ZPK: 0x5A,
    KeyType.TPK: 0x6A,
    KeyType.TAK: 0xDE,
    KeyType.ZAK: 0x7E,
    KeyType.TMK: 0x2B,
    KeyType.PVK: 0x50,
    KeyType.MK_AC: 0x3C,
    KeyType.BDK: 0x9C,
    KeyType.TDK: 0xC6,
    KeyType.HMK: 0xB4,
}


class KeyParityError(Exception):
    """A key decrypted under the LMK does not have odd parity: corrupt, or of another type."""


@dataclasses.dataclass(frozen=True, slots=True)
class Lmk:
    """The HSM's local master key. ``repr`` never shows it."""

    key: bytes = dataclasses.field(repr=False)

    def __post_init__(self) -> None:
        if len(self.key) != 16 or not has_odd_parity(self.key):
            raise CryptoInputError("LMK must be a double-length key with odd parity")

    @classmethod
    def from_hex(cls, text: str) -> Lmk:
        try:
            return cls(bytes.fromhex(text))
        except ValueError:
            raise CryptoInputError("LMK must be 32 hex characters") from None

    def for_type(self, key_type: KeyType) -> bytes:
        return bytes([self.key[0] ^ key_type.variant]) + self.key[1:]

    @property
    def check_value(self) -> str:
        return key_check_value(self.key).hex().upper()


DEFAULT_TEST_LMK: Final = Lmk.from_hex(TEST_LMK_HEX)


def lmk_check_value(lmk: Lmk) -> str:
    return lmk.check_value


def encrypt_under_lmk(lmk: Lmk, key_type: KeyType, clear_key: bytes) -> str:
    """``U`` + 32 hex: a clear double-length key put under the LMK (key ceremony / configuration tool)."""
    if len(clear_key) != 16:
        raise CryptoInputError("acqsim keys are double length (16 bytes)")
    if not has_odd_parity(clear_key):
        raise KeyParityError("key does not have odd parity")
    return KEY_SCHEME_DOUBLE + tdes_ecb_encrypt(lmk.for_type(key_type), clear_key).hex().upper()


def is_key_under_lmk(text: str) -> bool:
    return (
        len(text) == 1 + KEY_HEX_LEN
        and text[0] == KEY_SCHEME_DOUBLE
        and all(c in "0123456789ABCDEF" for c in text[1:].upper())
    )


#: Keys unwrapped from under the LMK, kept by (LMK, type, cryptogram), least recently used dropped first: a
#: front-end sends the same few working keys with every command, and unwrapping one (format check, TDES,
#: parity) costs more than the MAC it is used for. Inside the HSM process only, like the LMK itself; a
#: cryptogram that fails to unwrap is not kept (it raises again, every time).
UNWRAPPED_KEYS_CACHED: Final = 4096


def decrypt_under_lmk(lmk: Lmk, key_type: KeyType, under_lmk: str) -> bytes:
    """The clear key, for use inside the HSM only. Raises :class:`KeyParityError` for a wrong-type key."""
    return _unwrap(lmk, key_type, under_lmk)


@functools.lru_cache(maxsize=UNWRAPPED_KEYS_CACHED)
def _unwrap(lmk: Lmk, key_type: KeyType, under_lmk: str) -> bytes:
    if not is_key_under_lmk(under_lmk):
        raise CryptoInputError("key under LMK must be U + 32 hex")
    clear = tdes_ecb_decrypt(lmk.for_type(key_type), bytes.fromhex(under_lmk[1:]))
    if not has_odd_parity(clear):
        raise KeyParityError(f"key does not decrypt to a {key_type} with odd parity")
    return clear
