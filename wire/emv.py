"""EMV / PBOC application cryptograms, sans-IO (PROTOCOL.md §7).

The pure algorithms the HSM, the simulated chip card and the tests share:

- ICC master key, EMV option A: Y = the rightmost 16 digits of PAN ‖ PSN (padded left with 0);
  MK = TDES_IMK(Y) ‖ TDES_IMK(Y ⊕ FF…FF), odd parity applied.
- Session keys: EMV common (EMV 4.3 Book 2 A1.3: R = ATC ‖ 00×6, byte 3 = F0 / 0F) and PBOC
  (TDES_MK(00×6 ‖ ATC) ‖ TDES_MK(00×6 ‖ ATC ⊕ FFFF)).
- ARQC / TC / AAC: ISO 9797-1 MAC algorithm 3 with padding method 2 (``80`` then zeros) under the session key.
- ARPC method 1 (8 bytes: TDES_SK(ARQC ⊕ (ARC ‖ 00×6))) and method 2 (4 bytes: MAC alg 3 over ARQC ‖ CSU ‖
  proprietary authentication data).

Keys are 16-byte double-length TDES keys. Errors are :class:`CryptoInputError` and never carry key, PAN or
cryptogram material.
"""

from __future__ import annotations

import enum
from typing import Final

from wire.paycrypto import (
    BLOCK,
    CryptoInputError,
    tdes_cbc_encrypt,
    tdes_ecb_decrypt,
    tdes_ecb_encrypt,
    with_odd_parity,
    xor,
)

KEY_LEN: Final = 16
ATC_LEN: Final = 2
ARQC_LEN: Final = 8
ARC_LEN: Final = 2
#: ARPC method 2: the Card Status Update is 4 bytes, the proprietary authentication data 0–8 bytes.
CSU_LEN: Final = 4
MAX_PROPRIETARY_AUTH_LEN: Final = 8
ARPC_METHOD_2_LEN: Final = 4
#: The digits of PAN ‖ PSN that option A uses.
OPTION_A_DIGITS: Final = 16
_ALL_ONES: Final = b"\xff" * BLOCK


class SessionKeyMethod(enum.StrEnum):
    """How the AC session key is derived from the ICC master key and the ATC."""

    EMV_COMMON = "emv-common"
    PBOC = "pboc"


class ArpcMethod(enum.IntEnum):
    METHOD_1 = 1
    METHOD_2 = 2


def _check_key(key: bytes, what: str) -> None:
    if len(key) != KEY_LEN:
        raise CryptoInputError(f"{what} must be {KEY_LEN} bytes, not {len(key)}")


def _check_len(value: bytes, length: int, what: str) -> None:
    if len(value) != length:
        raise CryptoInputError(f"{what} must be {length} bytes, not {len(value)}")


def derive_icc_master_key(imk: bytes, pan: str, psn: str = "00") -> bytes:
    """The card's AC master key from the issuer's IMK-AC (EMV option A), with odd parity."""
    _check_key(imk, "IMK")
    if not pan.isdigit() or not psn.isdigit() or len(psn) > 2:
        raise CryptoInputError("PAN must be digits and PSN at most 2 digits")
    digits = (pan + psn.zfill(2))[-OPTION_A_DIGITS:].zfill(OPTION_A_DIGITS)
    y = bytes.fromhex(digits)
    return with_odd_parity(tdes_ecb_encrypt(imk, y) + tdes_ecb_encrypt(imk, xor(y, _ALL_ONES)))


def derive_session_key(icc_mk: bytes, atc: bytes, method: SessionKeyMethod) -> bytes:
    """The AC session key for one transaction counter value."""
    _check_key(icc_mk, "ICC master key")
    _check_len(atc, ATC_LEN, "ATC")
    if method is SessionKeyMethod.PBOC:
        left = bytes(6) + atc
        right = bytes(6) + xor(atc, b"\xff\xff")
        return tdes_ecb_encrypt(icc_mk, left) + tdes_ecb_encrypt(icc_mk, right)
    left = atc + b"\xf0" + bytes(5)
    right = atc + b"\x0f" + bytes(5)
    return with_odd_parity(tdes_ecb_encrypt(icc_mk, left) + tdes_ecb_encrypt(icc_mk, right))


def pad_method_2(data: bytes) -> bytes:
    """ISO 9797-1 padding method 2: ``80`` then zero bytes up to a multiple of 8 (always adds a byte)."""
    padded = data + b"\x80"
    return padded + bytes(-len(padded) % BLOCK)


def mac_alg3_pad2(key: bytes, data: bytes) -> bytes:
    """ISO 9797-1 MAC algorithm 3 (single-DES CBC under K1, then D(K2), E(K1)), padding method 2."""
    _check_key(key, "MAC key")
    k1, k2 = key[:BLOCK], key[BLOCK:]
    chained = tdes_cbc_encrypt(k1, pad_method_2(data))[-BLOCK:]
    return tdes_ecb_encrypt(k1, tdes_ecb_decrypt(k2, chained))


def generate_ac(session_key: bytes, data: bytes) -> bytes:
    """An application cryptogram (ARQC, TC or AAC) over the CDOL data (PROTOCOL.md §7 lists its order)."""
    return mac_alg3_pad2(session_key, data)


def arpc_method_1(session_key: bytes, arqc: bytes, arc: bytes) -> bytes:
    """ARPC method 1: TDES_SK(ARQC ⊕ (ARC ‖ 00×6)), 8 bytes."""
    _check_key(session_key, "session key")
    _check_len(arqc, ARQC_LEN, "ARQC")
    _check_len(arc, ARC_LEN, "ARC")
    return tdes_ecb_encrypt(session_key, xor(arqc, arc + bytes(BLOCK - ARC_LEN)))


def arpc_method_2(session_key: bytes, arqc: bytes, csu: bytes, proprietary: bytes = b"") -> bytes:
    """ARPC method 2: the first 4 bytes of MAC algorithm 3 (pad 2) over ARQC ‖ CSU ‖ proprietary data."""
    _check_len(arqc, ARQC_LEN, "ARQC")
    _check_len(csu, CSU_LEN, "CSU")
    if len(proprietary) > MAX_PROPRIETARY_AUTH_LEN:
        raise CryptoInputError(f"proprietary authentication data is at most {MAX_PROPRIETARY_AUTH_LEN} bytes")
    return mac_alg3_pad2(session_key, arqc + csu + proprietary)[:ARPC_METHOD_2_LEN]
