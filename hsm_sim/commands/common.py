"""Helpers shared by the command handlers: key type codes, keys under the LMK, PIN block formats.

Every key a command names is decrypted under the LMK variant of the type the command expects; a key whose
clear value lacks odd parity (corrupt, or of another type) answers 10 (source key) or 11 (destination key).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextvars import ContextVar
from typing import Final

from hsm_sim.errors import CommandError, ErrorCode
from hsm_sim.keys import KeyParityError, KeyType, Lmk, decrypt_under_lmk
from hsm_sim.reader import FieldReader
from hsm_sim.usage import KeyUse, require_use
from wire.paycrypto import EcbKey, MacAlgorithm, PinBlockFormat

#: payShield PIN block format codes: 01 = ISO 9564 format 0, 05 = format 1, 47 = format 3.
PIN_FORMAT_CODES: Final = {"01": PinBlockFormat.ISO0, "05": PinBlockFormat.ISO1, "47": PinBlockFormat.ISO3}
#: M6/M8 algorithm codes: 1 = ISO 9797-1 alg 1, 3 = ANSI X9.19 (ISO 9797-1 alg 3), C = CUP POS ECB MAC.
MAC_ALGORITHM_CODES: Final = {
    "1": MacAlgorithm.ISO9797_ALG1,
    "3": MacAlgorithm.X9_19,
    "C": MacAlgorithm.CUP_ECB,
    "H": MacAlgorithm.HMAC_SHA256_64,  # acqsim's: the merchant link's HMAC-SHA-256/64 (not a payShield code)
}
#: The inverses, for clients.
MAC_ALGORITHM_BY_NAME: Final = {v: k for k, v in MAC_ALGORITHM_CODES.items()}
PIN_FORMAT_BY_ENUM: Final = {v: k for k, v in PIN_FORMAT_CODES.items()}

#: Cipher contexts of clear working keys kept for reuse (least recently used dropped first): a MAC or a PIN
#: check is one or two block operations, and building a key's context costs about as much as both. Inside the
#: HSM process only, as the unwrapped keys are (:data:`hsm_sim.keys.UNWRAPPED_KEYS_CACHED`). The processor runs
#: on one thread (the server's event loop), as an :class:`EcbKey` requires.
KEY_CONTEXTS_CACHED: Final = 1024


@functools.lru_cache(maxsize=KEY_CONTEXTS_CACHED)
def ecb_key(key: bytes) -> EcbKey:
    """The reusable ECB contexts of the clear key ``key``."""
    return EcbKey(key)


#: A command handler: reads its fields, returns the answer fields that follow error code 00.
Handler = Callable[[Lmk, FieldReader], str]


#: The key types the running command named, in order, for the audit log (the processor sets a fresh list).
KEY_TYPES_NAMED: ContextVar[list[KeyType] | None] = ContextVar("KEY_TYPES_NAMED", default=None)


def note_key_type(key_type: KeyType) -> None:
    named = KEY_TYPES_NAMED.get()
    if named is not None and key_type not in named:
        named.append(key_type)


def key_type_field(reader: FieldReader, what: str, use: KeyUse | None = None) -> KeyType:
    """A 3-digit key type code (04 if acqsim knows no such type), checked against ``use`` (28)."""
    code = reader.digits(3, what)
    try:
        key_type = KeyType.from_code(code)
    except KeyError:
        raise CommandError(ErrorCode.INVALID_KEY_TYPE_CODE, f"{what}: unknown key type code {code}") from None
    note_key_type(key_type)
    if use is not None:
        require_use(key_type, use, what)
    return key_type


def clear_key(
    lmk: Lmk, key_type: KeyType, under_lmk: str, *, destination: bool = False, use: KeyUse | None = None
) -> bytes:
    """The clear key for use inside the HSM; ``use`` (when given) is checked first, before any decryption."""
    note_key_type(key_type)
    if use is not None:
        require_use(key_type, use, str(key_type))
    try:
        return decrypt_under_lmk(lmk, key_type, under_lmk)
    except KeyParityError:
        code = ErrorCode.DESTINATION_KEY_PARITY if destination else ErrorCode.SOURCE_KEY_PARITY
        raise CommandError(code, f"{key_type} fails the parity check (corrupt or of another type)") from None


def pin_format_field(reader: FieldReader, what: str) -> PinBlockFormat:
    code = reader.digits(2, what)
    if code not in PIN_FORMAT_CODES:
        raise CommandError(ErrorCode.INVALID_PIN_BLOCK_FORMAT, f"{what}: unsupported PIN block format {code}")
    return PIN_FORMAT_CODES[code]


def account_pan(account: str) -> str:
    """A PAN-shaped string whose "12 rightmost digits excluding the check digit" are ``account``."""
    return account + "0"
