"""Payment cryptography primitives, sans-IO, over ``cryptography``'s own API.

TDES (ECB/CBC), key parity and check values, ISO 9564 PIN blocks (formats 0, 1, 3), MACs (ISO 9797-1
algorithm 1, ANSI X9.19 = ISO 9797-1 algorithm 3, and the CUP "ECB" POS MAC of PROTOCOL.md §1), Visa PVV.

Keys are ``bytes``: 8 (single DES), 16 (double-length K1K2) or 24 bytes. cryptography deprecates 8- and
16-byte TripleDES keys, so they are expanded here to K1K1K1 / K1K2K1 before use — warning-free.

Errors are :class:`PinBlockError` / :class:`CryptoInputError`; their messages never contain PIN digits,
PAN digits or key material (they are raised into logs).
"""

from __future__ import annotations

import enum
import functools
import hashlib
import hmac
import operator
import secrets
import sys
from typing import Final

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from wire.errors import AcqsimError

BLOCK: Final = 8
ZERO_BLOCK: Final = bytes(BLOCK)
MIN_PIN_LEN: Final = 4
MAX_PIN_LEN: Final = 12
KCV_LEN_CUP: Final = 4  # PROTOCOL.md §1: sign-on KCV = first 4 bytes


class CryptoInputError(AcqsimError):
    """A key or data length/format is not acceptable (never says what the value was)."""


class PinBlockError(AcqsimError):
    """A PIN block cannot be built or does not decode to a valid PIN (no digits in the message)."""


# --- TDES --------------------------------------------------------------------------------------------


def _expand(key: bytes) -> bytes:
    if len(key) == 8:
        return key * 3
    if len(key) == 16:
        return key + key[:8]
    if len(key) == 24:
        return key
    raise CryptoInputError(f"DES/TDES key must be 8, 16 or 24 bytes, not {len(key)}")


#: Key schedules kept for reuse: building one costs more than encrypting a block with it. The keys stay in
#: this process's memory only, as they already are while in use.
ECB_CACHE_SIZE: Final = 1024


@functools.lru_cache(maxsize=ECB_CACHE_SIZE)
def _ecb(key: bytes) -> Cipher[modes.ECB]:
    return Cipher(TripleDES(_expand(key)), modes.ECB())  # noqa: S305 - ECB is the standard here


def _check_blocks(data: bytes) -> None:
    if len(data) % BLOCK:
        raise CryptoInputError(f"data length {len(data)} is not a multiple of {BLOCK}")


def tdes_ecb_encrypt(key: bytes, data: bytes) -> bytes:
    _check_blocks(data)
    encryptor = _ecb(key).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def tdes_ecb_decrypt(key: bytes, data: bytes) -> bytes:
    _check_blocks(data)
    decryptor = _ecb(key).decryptor()
    return decryptor.update(data) + decryptor.finalize()


class EcbKey:
    """One TDES key's ECB encryptor and decryptor, built once and reused for every message.

    For a holder that uses one key for many messages — a terminal session's MAK and PIK — this saves building
    a cipher context per call. ECB carries no state from one block to the next, so a context fed whole blocks
    can be fed again; not to be shared between threads. Wherever a key is taken as ``bytes | EcbKey`` below,
    both give the same result.
    """

    __slots__ = ("_decryptor", "_encryptor")

    def __init__(self, key: bytes) -> None:
        cipher = _ecb(key)
        self._encryptor = cipher.encryptor()
        self._decryptor = cipher.decryptor()

    def encrypt(self, data: bytes) -> bytes:
        _check_blocks(data)
        return self._encryptor.update(data)

    def decrypt(self, data: bytes) -> bytes:
        _check_blocks(data)
        return self._decryptor.update(data)


def _encrypt(key: bytes | EcbKey, data: bytes) -> bytes:
    return key.encrypt(data) if isinstance(key, EcbKey) else tdes_ecb_encrypt(key, data)


def tdes_cbc_encrypt(key: bytes, data: bytes, iv: bytes = ZERO_BLOCK) -> bytes:
    _check_blocks(data)
    encryptor = Cipher(TripleDES(_expand(key)), modes.CBC(iv)).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def tdes_cbc_decrypt(key: bytes, data: bytes, iv: bytes = ZERO_BLOCK) -> bytes:
    _check_blocks(data)
    decryptor = Cipher(TripleDES(_expand(key)), modes.CBC(iv)).decryptor()
    return decryptor.update(data) + decryptor.finalize()


def xor(a: bytes, b: bytes) -> bytes:
    if len(a) != len(b):
        raise CryptoInputError("xor operands differ in length")
    return (int.from_bytes(a) ^ int.from_bytes(b)).to_bytes(len(a))


# --- parity and check values -------------------------------------------------------------------------


_ODD_PARITY_BYTES: Final = bytes(b for b in range(256) if bin(b).count("1") % 2 == 1)


def has_odd_parity(key: bytes) -> bool:
    """Every byte of a DES key has an odd number of 1 bits."""
    return not key.translate(None, _ODD_PARITY_BYTES)  # what is left after deleting the odd-parity bytes


def with_odd_parity(key: bytes) -> bytes:
    """Fix each byte's lowest bit so the byte has odd parity."""
    return bytes(byte ^ (0 if bin(byte).count("1") % 2 else 1) for byte in key)


def generate_key(length: int = 16) -> bytes:
    """A random DES/TDES key with odd parity."""
    if length not in (8, 16, 24):
        raise CryptoInputError(f"key length must be 8, 16 or 24, not {length}")
    return with_odd_parity(secrets.token_bytes(length))


def key_check_value(key: bytes, length: int = BLOCK) -> bytes:
    """Encrypt 8 zero bytes under ``key`` and keep the first ``length`` bytes."""
    return tdes_ecb_encrypt(key, ZERO_BLOCK)[:length]


def encrypt_key_under(kek: bytes, key: bytes) -> bytes:
    """Encrypt a working key under a key-encryption key (TMK/ZMK), TDES ECB — the sign-on form."""
    return tdes_ecb_encrypt(kek, key)


def decrypt_key_under(kek: bytes, key_under_kek: bytes) -> bytes:
    return tdes_ecb_decrypt(kek, key_under_kek)


# --- ISO 9564 PIN blocks -----------------------------------------------------------------------------


class PinBlockFormat(enum.StrEnum):
    """ISO 9564-1 formats (payShield calls them 01, 05 and 47; ISO calls them 0, 1 and 3)."""

    ISO0 = "0"
    ISO1 = "1"
    ISO3 = "3"


def _pan_field(pan: str) -> bytes:
    """``0000`` + the 12 rightmost PAN digits excluding the check digit."""
    if not pan.isdigit() or len(pan) < 13:
        raise PinBlockError("PAN must be at least 13 digits")
    return bytes.fromhex("0000" + pan[-13:-1])


def _check_pin(pin: str) -> None:
    if not pin.isdigit() or not MIN_PIN_LEN <= len(pin) <= MAX_PIN_LEN:
        raise PinBlockError(f"PIN must be {MIN_PIN_LEN} to {MAX_PIN_LEN} digits")


def build_pin_block(pin: str, pan: str | None, fmt: PinBlockFormat = PinBlockFormat.ISO0) -> bytes:
    """The clear PIN block for ``pin``; ``pan`` is required by formats 0 and 3."""
    _check_pin(pin)
    head = f"{fmt.value}{len(pin):X}{pin}"
    fill_len = 16 - len(head)
    if fmt is PinBlockFormat.ISO0:
        return xor(bytes.fromhex(head + "F" * fill_len), _pan_field(pan or ""))
    if fmt is PinBlockFormat.ISO1:
        fill = "".join(secrets.choice("0123456789ABCDEF") for _ in range(fill_len))
        return bytes.fromhex(head + fill)
    fill = "".join(secrets.choice("ABCDEF") for _ in range(fill_len))
    return xor(bytes.fromhex(head + fill), _pan_field(pan or ""))


def extract_pin(block: bytes, pan: str | None, fmt: PinBlockFormat = PinBlockFormat.ISO0) -> str:
    """Recover the PIN from a clear PIN block; raises :class:`PinBlockError` if the block is malformed."""
    if len(block) != BLOCK:
        raise PinBlockError("PIN block must be 8 bytes")
    plain = block if fmt is PinBlockFormat.ISO1 else xor(block, _pan_field(pan or ""))
    nibbles = plain.hex().upper()
    if nibbles[0] != fmt.value:
        raise PinBlockError(f"PIN block control field is not format {fmt.value}")
    length = int(nibbles[1], 16)
    if not MIN_PIN_LEN <= length <= MAX_PIN_LEN:
        raise PinBlockError("PIN length in the block is out of range")
    pin, fill = nibbles[2 : 2 + length], nibbles[2 + length :]
    if not pin.isdigit():
        raise PinBlockError("PIN field holds a non-decimal nibble")
    if (fmt is PinBlockFormat.ISO0 and set(fill) - {"F"}) or (fmt is PinBlockFormat.ISO3 and set(fill) - set("ABCDEF")):
        raise PinBlockError("PIN block fill is not valid for its format")
    return pin


def encrypt_pin_block(pik: bytes | EcbKey, pin: str, pan: str, fmt: PinBlockFormat = PinBlockFormat.ISO0) -> bytes:
    return _encrypt(pik, build_pin_block(pin, pan, fmt))


def decrypt_pin(pik: bytes, encrypted_block: bytes, pan: str, fmt: PinBlockFormat = PinBlockFormat.ISO0) -> str:
    return extract_pin(tdes_ecb_decrypt(pik, encrypted_block), pan, fmt)


# --- MACs --------------------------------------------------------------------------------------------


def _pad_zero(data: bytes) -> bytes:
    """ISO 9797-1 padding method 1: zero bytes up to a multiple of 8 (nothing added if already aligned)."""
    if not data:
        return ZERO_BLOCK
    return data + bytes(-len(data) % BLOCK)


def mac_iso9797_alg1(key: bytes, data: bytes) -> bytes:
    """ISO 9797-1 MAC algorithm 1 (CBC-MAC), padding method 1, with the block cipher keyed by ``key``."""
    return tdes_cbc_encrypt(key, _pad_zero(data))[-BLOCK:]


def mac_x919(key: bytes, data: bytes) -> bytes:
    """ANSI X9.19 retail MAC (ISO 9797-1 algorithm 3): single-DES CBC under K1, then D(K2), E(K1).

    A single-length key gives the ANSI X9.9 MAC.
    """
    if len(key) not in (8, 16):
        raise CryptoInputError("X9.19 key must be 8 or 16 bytes")
    k1, k2 = key[:8], key[8:] or key[:8]
    chained = tdes_cbc_encrypt(k1, _pad_zero(data))[-BLOCK:]
    return tdes_ecb_encrypt(k1, tdes_ecb_decrypt(k2, chained))


def mac_cup_ecb(key: bytes | EcbKey, data: bytes) -> bytes:
    """The CUP POS "ECB" MAC of PROTOCOL.md §1; returns the 8 ASCII bytes that go into field 64.

    XOR all zero-padded 8-byte blocks; write the result as 16 upper-case hex characters; encrypt the first 8
    characters, XOR with the last 8, encrypt again; the MAC is the first 8 hex characters of that, as ASCII.
    """
    # XOR of the 8-byte blocks, as machine words: XOR works byte by byte, so the byte order does not matter
    # as long as the words are read and written back in the same one.
    folded = functools.reduce(operator.xor, memoryview(_pad_zero(data)).cast("Q"))
    hex_text = folded.to_bytes(BLOCK, sys.byteorder).hex().upper().encode("ascii")
    encrypt = key.encrypt if isinstance(key, EcbKey) else functools.partial(tdes_ecb_encrypt, key)
    first = encrypt(hex_text[:BLOCK])
    chained = (int.from_bytes(first) ^ int.from_bytes(hex_text[BLOCK:])).to_bytes(BLOCK)  # both 8 bytes
    return encrypt(chained)[:4].hex().upper().encode("ascii")  # 8 hex characters: the first 4 bytes


class MacAlgorithm(enum.StrEnum):
    ISO9797_ALG1 = "iso9797-1"
    X9_19 = "x9.19"
    CUP_ECB = "cup-ecb"
    #: HMAC-SHA-256 (RFC 2104, FIPS 180-4) truncated to its first 8 bytes (RFC 2104 §5): the merchant link's
    #: request MAC (docs/smartpos.md), over a double-length key used as 16 bytes of HMAC key.
    HMAC_SHA256_64 = "hmac-sha256-64"


#: Bytes of HMAC-SHA-256 kept as the MAC (the HSM's MAC field is 16H).
HMAC_MAC_LEN: Final = 8


def compute_mac(algorithm: MacAlgorithm, key: bytes, data: bytes) -> bytes:
    if algorithm is MacAlgorithm.ISO9797_ALG1:
        return mac_iso9797_alg1(key, data)
    if algorithm is MacAlgorithm.X9_19:
        return mac_x919(key, data)
    if algorithm is MacAlgorithm.HMAC_SHA256_64:
        return hmac.new(key, data, hashlib.sha256).digest()[:HMAC_MAC_LEN]
    return mac_cup_ecb(key, data)


# --- Visa PVV ----------------------------------------------------------------------------------------

PVV_LEN: Final = 4


def visa_pvv(pvk: bytes | EcbKey, pan: str, pvki: str, pin: str) -> str:
    """Visa PIN Verification Value.

    TSP = 11 rightmost PAN digits excluding the check digit ‖ PVKI ‖ 4 leftmost PIN digits; encrypt under the
    PVK pair; take the decimal digits of the result left to right, then (if fewer than 4) the hex letters
    A–F decimalised (A→0 … F→5) left to right; the first four are the PVV. Only the 4 leftmost PIN digits
    take part: with 6-digit PINs, PINs that share their first 4 digits share a PVV (a limit of the method).
    """
    if not pan.isdigit() or len(pan) < 12:
        raise CryptoInputError("PAN must be at least 12 digits")
    if len(pvki) != 1 or not pvki.isdigit():
        raise CryptoInputError("PVKI must be one digit")
    _check_pin(pin)
    tsp = pan[-12:-1] + pvki + pin[:4]
    result = _encrypt(pvk, bytes.fromhex(tsp)).hex().upper()
    digits = [c for c in result if c.isdigit()]
    if len(digits) < PVV_LEN:
        digits += [str(int(c, 16) - 10) for c in result if not c.isdigit()]
    return "".join(digits[:PVV_LEN])
