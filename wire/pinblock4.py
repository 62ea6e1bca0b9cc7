"""ISO 9564-1 PIN block format 4: the AES PIN block (16 bytes), for AES DUKPT readers (X9.24-3).

PIN field: control ``4`` ‖ PIN length ‖ PIN digits ‖ fill ``A`` up to 16 nibbles ‖ 8 random bytes. PAN field:
``M`` (PAN length − 12, 0 for shorter PANs, which are padded left with 0 to 12 digits) ‖ PAN digits ‖ ``0`` fill
to 32 nibbles. Enciphered: AES_K(AES_K(PIN field) ⊕ PAN field). Errors are
:class:`~wire.paycrypto.PinBlockError` and never name a digit.
"""

from __future__ import annotations

import secrets
from typing import Final

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from wire.paycrypto import MAX_PIN_LEN, MIN_PIN_LEN, PinBlockError, xor

AES_BLOCK: Final = 16
FORMAT_4: Final = "4"
FILL: Final = "A"
PAN_DIGITS_BASE: Final = 12
MAX_PAN_DIGITS: Final = 19


def _aes(key: bytes, block: bytes, *, decrypt: bool = False) -> bytes:
    cipher = Cipher(algorithms.AES(key), modes.ECB())  # noqa: S305 - one block, as ISO 9564 format 4 says
    context = cipher.decryptor() if decrypt else cipher.encryptor()
    return context.update(block) + context.finalize()


def pin_field(pin: str) -> bytes:
    if not pin.isdigit() or not MIN_PIN_LEN <= len(pin) <= MAX_PIN_LEN:
        raise PinBlockError(f"PIN must be {MIN_PIN_LEN} to {MAX_PIN_LEN} digits")
    head = f"{FORMAT_4}{len(pin):X}{pin}".ljust(16, FILL)
    return bytes.fromhex(head) + secrets.token_bytes(8)


def pan_field(pan: str) -> bytes:
    if not pan.isdigit() or len(pan) > MAX_PAN_DIGITS:
        raise PinBlockError(f"PAN must be at most {MAX_PAN_DIGITS} digits")
    digits = pan.zfill(PAN_DIGITS_BASE)
    return bytes.fromhex(f"{len(digits) - PAN_DIGITS_BASE:X}{digits}".ljust(32, "0"))


def encipher(key: bytes, pin: str, pan: str) -> bytes:
    return _aes(key, xor(_aes(key, pin_field(pin)), pan_field(pan)))


def decipher(key: bytes, block: bytes, pan: str) -> str:
    """The PIN from a format 4 block; :class:`PinBlockError` if it does not decode to one."""
    if len(block) != AES_BLOCK:
        raise PinBlockError("an ISO 9564 format 4 PIN block is 16 bytes")
    field = _aes(key, xor(_aes(key, block, decrypt=True), pan_field(pan)), decrypt=True).hex().upper()
    length = int(field[1], 16)
    if field[0] != FORMAT_4 or not MIN_PIN_LEN <= length <= MAX_PIN_LEN:
        raise PinBlockError("PIN block is not format 4, or its PIN length is out of range")
    pin, fill = field[2 : 2 + length], field[2 + length : 16]
    if not pin.isdigit() or set(fill) - {FILL}:
        raise PinBlockError("PIN block's PIN or fill is not valid for format 4")
    return pin
