"""DUKPT key derivation, sans-IO (PROTOCOL.md §8): TDES DUKPT (ANSI X9.24-1) and AES DUKPT (X9.24-3).

Both the MPOS reader (which holds only its initial key and derives forward) and the HSM (which holds the BDK
and derives the same key from the KSN a message carries) use these functions; nothing else derives DUKPT
keys.

**TDES DUKPT** — KSN 10 bytes: key set id and device id (59 bits) ‖ 21-bit transaction counter. IPEK =
TDES_BDK(K) ‖ TDES_(BDK ⊕ C0C0C0C000000000C0C0C0C000000000)(K), K = the KSN's left 8 bytes with the counter
cleared. The transaction key follows the non-reversible key generation once per set counter bit, high bit
first. A counter with more than 10 bits set is never used (X9.24-1), nor is 0. Variants: PIN
``…FF…FF`` (byte 7 and 15), MAC request (bytes 6 and 14), data request (bytes 5 and 13, then each half
encrypted under the variant key).

**AES DUKPT** — KSN 12 bytes: initial key id (8) ‖ 32-bit counter. Keys derive with AES-ECB over the 16-byte
derivation data ``01 ‖ 01 ‖ usage (2) ‖ algorithm (2) ‖ length in bits (2) ‖ 8 bytes`` (the initial key id
for the initial key; else the key id's right 4 bytes ‖ counter). A counter with more than 16 bits set is
never used, nor is 0. AES-128 keys only (algorithm ``0002``).

Errors are :class:`DukptError` and never carry key material.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Final

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from wire.errors import MessageDecodeError
from wire.paycrypto import CryptoInputError, tdes_ecb_encrypt, xor


class DukptError(CryptoInputError):
    """A KSN or counter DUKPT cannot use: malformed, zero, too many bits set, or past the end."""


# --- TDES DUKPT (X9.24-1) ------------------------------------------------------------------------------

TDES_KSN_LEN: Final = 10
TDES_COUNTER_BITS: Final = 21
TDES_COUNTER_MASK: Final = (1 << TDES_COUNTER_BITS) - 1
#: X9.24-1: a device skips counters with more than 10 one bits (so each key takes at most 10 derivation steps).
TDES_MAX_COUNTER_ONES: Final = 10
_KEY_MASK: Final = bytes.fromhex("C0C0C0C000000000C0C0C0C000000000")
_PIN_VARIANT: Final = bytes.fromhex("00000000000000FF00000000000000FF")
_MAC_VARIANT: Final = bytes.fromhex("000000000000FF00000000000000FF00")
_DATA_VARIANT: Final = bytes.fromhex("0000000000FF00000000000000FF0000")


class KeyUsage(enum.StrEnum):
    PIN = "pin"
    MAC = "mac"
    DATA = "data"


def _ksn_int(ksn: bytes, length: int) -> int:
    if len(ksn) != length:
        raise DukptError(f"KSN must be {length} bytes, not {len(ksn)}")
    return int.from_bytes(ksn, "big")


def tdes_counter(ksn: bytes) -> int:
    return _ksn_int(ksn, TDES_KSN_LEN) & TDES_COUNTER_MASK


def tdes_initial_ksn(ksn: bytes) -> bytes:
    """The KSN with its counter cleared (names the device, hence its IPEK)."""
    return (_ksn_int(ksn, TDES_KSN_LEN) & ~TDES_COUNTER_MASK).to_bytes(TDES_KSN_LEN, "big")


def tdes_counter_usable(counter: int) -> bool:
    return 0 < counter <= TDES_COUNTER_MASK and counter.bit_count() <= TDES_MAX_COUNTER_ONES


def tdes_ipek(bdk: bytes, ksn: bytes) -> bytes:
    """The initial PIN encryption key of the device ``ksn`` names."""
    if len(bdk) != 16:
        raise DukptError("BDK must be 16 bytes")
    k = tdes_initial_ksn(ksn)[:8]
    return tdes_ecb_encrypt(bdk, k) + tdes_ecb_encrypt(xor(bdk, _KEY_MASK), k)


def _non_reversible(key: bytes, data: bytes) -> bytes:
    """X9.24-1 non-reversible key generation: each half from single-DES under the left half, whitened."""

    def half(k: bytes) -> bytes:
        left, right = k[:8], k[8:]
        return xor(tdes_ecb_encrypt(left, xor(data, right)), right)

    return half(xor(key, _KEY_MASK)) + half(key)


def tdes_transaction_key(ipek: bytes, ksn: bytes) -> bytes:
    """The future key for ``ksn``'s counter, from the IPEK (before any usage variant)."""
    counter = tdes_counter(ksn)
    if not tdes_counter_usable(counter):
        raise DukptError(f"TDES DUKPT counter is not usable (0, past the end, or over {TDES_MAX_COUNTER_ONES} bits)")
    register = int.from_bytes(tdes_initial_ksn(ksn)[2:], "big")
    key = ipek
    for bit in range(TDES_COUNTER_BITS - 1, -1, -1):
        if counter >> bit & 1:
            register |= 1 << bit
            key = _non_reversible(key, register.to_bytes(8, "big"))
    return key


def tdes_usage_key(transaction_key: bytes, usage: KeyUsage) -> bytes:
    """The PIN, MAC-request or data-request key of one transaction."""
    if usage is KeyUsage.PIN:
        return xor(transaction_key, _PIN_VARIANT)
    if usage is KeyUsage.MAC:
        return xor(transaction_key, _MAC_VARIANT)
    variant = xor(transaction_key, _DATA_VARIANT)
    return tdes_ecb_encrypt(variant, variant)  # each half encrypted under the variant key itself


def tdes_derive(bdk: bytes, ksn: bytes, usage: KeyUsage) -> bytes:
    """The host side: BDK + KSN → the transaction's key for ``usage``."""
    return tdes_usage_key(tdes_transaction_key(tdes_ipek(bdk, ksn), ksn), usage)


# --- AES DUKPT (X9.24-3), AES-128 ------------------------------------------------------------------------

AES_KSN_LEN: Final = 12
AES_KEY_ID_LEN: Final = 8
AES_COUNTER_BITS: Final = 32
AES_MAX_COUNTER_ONES: Final = 16
AES_KEY_LEN: Final = 16
_AES128: Final = bytes.fromhex("0002")
_AES128_BITS: Final = (128).to_bytes(2, "big")
_DERIVATION_HEAD: Final = bytes.fromhex("0101")
_USAGE_INITIAL: Final = bytes.fromhex("8001")
_USAGE_INTERMEDIATE: Final = bytes.fromhex("8000")
_AES_USAGE: Final = {
    KeyUsage.PIN: bytes.fromhex("1000"),
    KeyUsage.MAC: bytes.fromhex("2000"),
    KeyUsage.DATA: bytes.fromhex("3000"),
}


def _aes_ecb(key: bytes, block: bytes) -> bytes:
    if len(key) != AES_KEY_LEN:
        raise DukptError(f"AES DUKPT keys here are AES-128 ({AES_KEY_LEN} bytes)")
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305 - X9.24-3 derivation is ECB
    return encryptor.update(block) + encryptor.finalize()


def _derivation_data(usage: bytes, tail: bytes) -> bytes:
    return _DERIVATION_HEAD + usage + _AES128 + _AES128_BITS + tail


def aes_split_ksn(ksn: bytes) -> tuple[bytes, int]:
    """(initial key id, counter) of a 12-byte KSN."""
    if len(ksn) != AES_KSN_LEN:
        raise DukptError(f"AES DUKPT KSN must be {AES_KSN_LEN} bytes, not {len(ksn)}")
    return ksn[:AES_KEY_ID_LEN], int.from_bytes(ksn[AES_KEY_ID_LEN:], "big")


def aes_counter_usable(counter: int) -> bool:
    return 0 < counter < 1 << AES_COUNTER_BITS and counter.bit_count() <= AES_MAX_COUNTER_ONES


def aes_initial_key(bdk: bytes, key_id: bytes) -> bytes:
    if len(key_id) != AES_KEY_ID_LEN:
        raise DukptError(f"initial key id must be {AES_KEY_ID_LEN} bytes")
    return _aes_ecb(bdk, _derivation_data(_USAGE_INITIAL, key_id))


def aes_intermediate_key(initial_key: bytes, key_id: bytes, counter: int) -> bytes:
    """The derivation key for ``counter``, from the initial key, one step per set bit, high bit first."""
    if not aes_counter_usable(counter):
        raise DukptError(f"AES DUKPT counter is not usable (0, or over {AES_MAX_COUNTER_ONES} bits)")
    key, working = initial_key, 0
    for bit in range(AES_COUNTER_BITS - 1, -1, -1):
        if counter >> bit & 1:
            working |= 1 << bit
            key = _aes_ecb(key, _derivation_data(_USAGE_INTERMEDIATE, key_id[4:] + working.to_bytes(4, "big")))
    return key


def aes_usage_key(intermediate_key: bytes, key_id: bytes, counter: int, usage: KeyUsage) -> bytes:
    return _aes_ecb(intermediate_key, _derivation_data(_AES_USAGE[usage], key_id[4:] + counter.to_bytes(4, "big")))


def aes_derive(bdk: bytes, ksn: bytes, usage: KeyUsage) -> bytes:
    """The host side: BDK + 12-byte KSN → the transaction's AES-128 key for ``usage``."""
    key_id, counter = aes_split_ksn(ksn)
    intermediate = aes_intermediate_key(aes_initial_key(bdk, key_id), key_id, counter)
    return aes_usage_key(intermediate, key_id, counter, usage)


# --- field 62 of an MPOS DUKPT request (acqsim's layout) ------------------------------------------------------

SCHEME_TDES: Final = 0x01
SCHEME_AES: Final = 0x02
_KSN_LEN_BY_SCHEME: Final = {SCHEME_TDES: TDES_KSN_LEN, SCHEME_AES: AES_KSN_LEN}
#: Track 2 ciphertext: at least one block, at most 48 bytes (a 37-character track, padded).
MAX_TRACK_CIPHERTEXT: Final = 48
#: An AES reader's PIN block (ISO 9564 format 4) is 16 bytes: too long for field 52 (b64), so it travels in 62.
AES_PIN_BLOCK_LEN: Final = 16


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DukptTrackData:
    """Field 62 of an MPOS DUKPT request: scheme (1 byte: 01 TDES, 02 AES-128) ‖ KSN (10 / 12) ‖ [AES only: PIN
    block length (1 byte, 0 or 16) ‖ the ISO 9564 format 4 PIN block] ‖ track 2 encrypted under the KSN's data
    key (CBC, zero IV, ASCII padded with zero bytes). A TDES reader's PIN block goes in 52 (8 bytes)."""

    scheme: int
    ksn: bytes
    track_ciphertext: bytes
    pin_block: bytes | None = None  # AES readers only

    def __post_init__(self) -> None:
        block = 16 if self.scheme == SCHEME_AES else 8
        if self.scheme not in _KSN_LEN_BY_SCHEME or len(self.ksn) != _KSN_LEN_BY_SCHEME[self.scheme]:
            raise MessageDecodeError("62: unknown DUKPT scheme or a KSN of the wrong length", field="62", offset=0)
        ciphertext = self.track_ciphertext
        if not ciphertext or len(ciphertext) % block or len(ciphertext) > MAX_TRACK_CIPHERTEXT:
            raise MessageDecodeError("62: track ciphertext is not whole blocks", field="62", offset=1 + len(self.ksn))
        if self.pin_block is not None and (self.scheme != SCHEME_AES or len(self.pin_block) != AES_PIN_BLOCK_LEN):
            raise MessageDecodeError(
                "62: a PIN block is an AES reader's, 16 bytes", field="62", offset=1 + len(self.ksn)
            )

    def encode(self) -> str:
        pin = b""
        if self.scheme == SCHEME_AES:
            pin = bytes([len(self.pin_block)]) + self.pin_block if self.pin_block is not None else b"\0"
        return (bytes([self.scheme]) + self.ksn + pin + self.track_ciphertext).hex().upper()

    @classmethod
    def parse(cls, value: str) -> DukptTrackData:
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raise MessageDecodeError("62 is not hex", field="62", offset=0) from None
        if not raw:
            raise MessageDecodeError("62 is empty", field="62", offset=0)
        ksn_len = _KSN_LEN_BY_SCHEME.get(raw[0], 0)
        rest, pin_block = raw[1 + ksn_len :], None
        if raw[0] == SCHEME_AES:
            if not rest or rest[0] not in (0, AES_PIN_BLOCK_LEN) or len(rest) < 1 + rest[0]:
                raise MessageDecodeError("62: AES PIN block length is not 0 or 16", field="62", offset=1 + ksn_len)
            pin_block, rest = (rest[1 : 1 + rest[0]] or None), rest[1 + rest[0] :]
        return cls(scheme=raw[0], ksn=raw[1 : 1 + ksn_len], track_ciphertext=rest, pin_block=pin_block)
