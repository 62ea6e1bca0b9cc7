"""The HSM's host commands: field layouts and handlers.

Frame (PROTOCOL.md §4): ``LEN`` (2, big-endian) ‖ header (4 ASCII, echoed) ‖ command (2) ‖ fields. Answer:
header ‖ response code (command's second letter + 1) ‖ error code (2) ‖ fields (only when the error is 00,
except where noted). Keys are ``U`` + 32 hex under the LMK (see :mod:`hsm_sim.keys`). ``N`` = decimal
digits, ``H`` = hex characters, ``A`` = ASCII.

NC  diagnostics                 request: —
                                answer : LMK check value 16H ‖ firmware version 9A
A0  generate key                request: mode 1N (0 generate, 1 generate and export) ‖ key type code 3N ‖
                                         key scheme 1A (U) ‖ [mode 1: export key type code 3N (000 ZMK /
                                         102 TMK) ‖ export key U+32H]
                                answer : key under LMK U+32H ‖ [mode 1: X ‖ key under ZMK/TMK 32H] ‖
                                         check value 16H (acqsim returns the full 16H; payShield 6H)
BU  key check value             request: key type code 3N ‖ key U+32H
                                answer : check value 16H
M6  generate MAC                request: mode flag 1N (0 only block) ‖ input format 1N (0 binary, 1 hex) ‖
                                         MAC size 1N (1 = 16H) ‖ algorithm 1A (1 ISO 9797-1 alg 1, 3 ANSI
                                         X9.19 = ISO 9797-1 alg 3, C CUP POS ECB MAC) ‖ padding 1N (1) ‖
                                         key type code 3N (003 TAK) ‖ key U+32H ‖ message length 4H
                                         (bytes as sent) ‖ message
                                answer : MAC 16H (the 8 MAC bytes; for C they are the 8 ASCII bytes of
                                         field 64)
M8  verify MAC                  request: as M6 ‖ MAC 16H                 answer: — (error 01: mismatch)
CA  translate PIN TPK → ZPK     request: TPK U+32H ‖ ZPK U+32H ‖ max PIN length 2N ‖ PIN block 16H ‖
                                         source format 2N ‖ destination format 2N ‖ account number 12N
                                answer : PIN length 2N ‖ PIN block under ZPK 16H ‖ destination format 2N
DC  verify PIN (Visa PVV)       request: TPK U+32H ‖ PVK U+32H ‖ PIN block 16H ‖ format 2N ‖ account
                                         number 12N ‖ PVKI 1N ‖ PVV 4N
                                answer : — (error 01: wrong PIN)

PIN block format codes (payShield): 01 ISO 9564 format 0, 05 format 1, 47 format 3. The account number is
the 12 rightmost PAN digits excluding the check digit.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Final

from hsm_sim.errors import CommandError, ErrorCode
from hsm_sim.keys import (
    KeyParityError,
    KeyType,
    Lmk,
    decrypt_under_lmk,
    encrypt_under_lmk,
)
from hsm_sim.reader import FieldReader
from wire.paycrypto import (
    CryptoInputError,
    MacAlgorithm,
    PinBlockError,
    PinBlockFormat,
    build_pin_block,
    compute_mac,
    encrypt_key_under,
    extract_pin,
    generate_key,
    key_check_value,
    tdes_ecb_decrypt,
    tdes_ecb_encrypt,
    visa_pvv,
)

FIRMWARE_VERSION: Final = "0007-E000"
MAX_MAC_MESSAGE: Final = 0xFFFF

PIN_FORMAT_CODES: Final = {"01": PinBlockFormat.ISO0, "05": PinBlockFormat.ISO1, "47": PinBlockFormat.ISO3}
MAC_ALGORITHM_CODES: Final = {"1": MacAlgorithm.ISO9797_ALG1, "3": MacAlgorithm.X9_19, "C": MacAlgorithm.CUP_ECB}
#: The inverse, for clients.
MAC_ALGORITHM_BY_NAME: Final = {v: k for k, v in MAC_ALGORITHM_CODES.items()}
PIN_FORMAT_BY_ENUM: Final = {v: k for k, v in PIN_FORMAT_CODES.items()}

Handler = Callable[[Lmk, FieldReader], str]


def _key_type(reader: FieldReader, what: str) -> KeyType:
    code = reader.digits(3, what)
    try:
        return KeyType.from_code(code)
    except KeyError:
        raise CommandError(ErrorCode.INVALID_INPUT, f"{what}: unknown key type code {code}") from None


def _clear_key(lmk: Lmk, key_type: KeyType, under_lmk: str, *, destination: bool = False) -> bytes:
    try:
        return decrypt_under_lmk(lmk, key_type, under_lmk)
    except KeyParityError:
        code = ErrorCode.DESTINATION_KEY_PARITY if destination else ErrorCode.SOURCE_KEY_PARITY
        raise CommandError(code, f"{key_type} fails the parity check (corrupt or of another type)") from None


def _pin_format(reader: FieldReader, what: str) -> PinBlockFormat:
    code = reader.digits(2, what)
    if code not in PIN_FORMAT_CODES:
        raise CommandError(ErrorCode.INVALID_PIN_BLOCK_FORMAT, f"{what}: unsupported PIN block format {code}")
    return PIN_FORMAT_CODES[code]


def _account_pan(account: str) -> str:
    """A PAN-shaped string whose "12 rightmost digits excluding the check digit" are ``account``."""
    return account + "0"


def nc_diagnostics(lmk: Lmk, reader: FieldReader) -> str:
    reader.end()
    return lmk.check_value + FIRMWARE_VERSION


def a0_generate_key(lmk: Lmk, reader: FieldReader) -> str:
    mode = reader.choice("01", "mode")
    key_type = _key_type(reader, "key type")
    reader.choice("U", "key scheme")
    clear = generate_key(16)
    answer = encrypt_under_lmk(lmk, key_type, clear)
    if mode == "1":
        export_type = _key_type(reader, "export key type")
        if export_type not in (KeyType.ZMK, KeyType.TMK):
            raise CommandError(ErrorCode.INVALID_INPUT, "export key must be a ZMK or TMK")
        kek = _clear_key(lmk, export_type, reader.key("export key"), destination=True)
        answer += "X" + encrypt_key_under(kek, clear).hex().upper()
    reader.end()
    return answer + key_check_value(clear).hex().upper()


def bu_check_value(lmk: Lmk, reader: FieldReader) -> str:
    key_type = _key_type(reader, "key type")
    clear = _clear_key(lmk, key_type, reader.key("key"))
    reader.end()
    return key_check_value(clear).hex().upper()


def _mac_request(lmk: Lmk, reader: FieldReader) -> tuple[MacAlgorithm, bytes, bytes]:
    reader.choice("0", "mode flag")
    input_format = reader.choice("01", "input format")
    reader.choice("1", "MAC size")
    algorithm = MAC_ALGORITHM_CODES[reader.choice("".join(MAC_ALGORITHM_CODES), "MAC algorithm")]
    reader.choice("1", "padding method")
    key_type = _key_type(reader, "key type")
    if key_type is not KeyType.TAK:
        raise CommandError(ErrorCode.INVALID_INPUT, f"a {key_type} cannot generate or verify MACs")
    key = _clear_key(lmk, key_type, reader.key("MAC key"))
    length = int(reader.hex(4, "message length"), 16)
    message = reader.raw(length, "message")
    if input_format == "1":
        try:
            message = bytes.fromhex(message.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            raise CommandError(ErrorCode.INVALID_INPUT, "message is not hex") from None
    return algorithm, key, message


def m6_generate_mac(lmk: Lmk, reader: FieldReader) -> str:
    algorithm, key, message = _mac_request(lmk, reader)
    reader.end()
    return compute_mac(algorithm, key, message).hex().upper()


def m8_verify_mac(lmk: Lmk, reader: FieldReader) -> str:
    algorithm, key, message = _mac_request(lmk, reader)
    presented = bytes.fromhex(reader.hex(16, "MAC"))
    reader.end()
    if not hmac.compare_digest(compute_mac(algorithm, key, message), presented):
        raise CommandError(ErrorCode.VERIFICATION_FAILED, "MAC does not verify")
    return ""


def _clear_pin(key: bytes, block_hex: str, fmt: PinBlockFormat, account: str) -> str:
    try:
        return extract_pin(tdes_ecb_decrypt(key, bytes.fromhex(block_hex)), _account_pan(account), fmt)
    except PinBlockError as exc:
        raise CommandError(ErrorCode.PIN_BLOCK_INVALID, str(exc)) from None


def ca_translate_pin(lmk: Lmk, reader: FieldReader) -> str:
    tpk = _clear_key(lmk, KeyType.TPK, reader.key("TPK"))
    zpk = _clear_key(lmk, KeyType.ZPK, reader.key("ZPK"), destination=True)
    max_len = int(reader.digits(2, "maximum PIN length"))
    block = reader.hex(16, "PIN block")
    source = _pin_format(reader, "source PIN block format")
    dest_code = reader.digits(2, "destination PIN block format")
    if dest_code not in PIN_FORMAT_CODES:
        raise CommandError(ErrorCode.INVALID_PIN_BLOCK_FORMAT, f"unsupported destination format {dest_code}")
    account = reader.digits(12, "account number")
    reader.end()
    pin = _clear_pin(tpk, block, source, account)
    if len(pin) > max_len:
        raise CommandError(ErrorCode.PIN_BLOCK_INVALID, "PIN longer than the maximum PIN length")
    out = tdes_ecb_encrypt(zpk, build_pin_block(pin, _account_pan(account), PIN_FORMAT_CODES[dest_code]))
    return f"{len(pin):02d}" + out.hex().upper() + dest_code


def dc_verify_pin_pvv(lmk: Lmk, reader: FieldReader) -> str:
    tpk = _clear_key(lmk, KeyType.TPK, reader.key("TPK"))
    pvk = _clear_key(lmk, KeyType.PVK, reader.key("PVK"), destination=True)
    block = reader.hex(16, "PIN block")
    fmt = _pin_format(reader, "PIN block format")
    account = reader.digits(12, "account number")
    pvki = reader.digits(1, "PVKI")
    pvv = reader.digits(4, "PVV")
    reader.end()
    pin = _clear_pin(tpk, block, fmt, account)
    try:
        expected = visa_pvv(pvk, _account_pan(account), pvki, pin)
    except CryptoInputError as exc:
        raise CommandError(ErrorCode.INVALID_INPUT, str(exc)) from None
    if not hmac.compare_digest(expected, pvv):
        raise CommandError(ErrorCode.VERIFICATION_FAILED, "PIN does not verify")
    return ""


COMMANDS: Final[dict[str, Handler]] = {
    "NC": nc_diagnostics,
    "A0": a0_generate_key,
    "BU": bu_check_value,
    "M6": m6_generate_mac,
    "M8": m8_verify_mac,
    "CA": ca_translate_pin,
    "DC": dc_verify_pin_pvv,
}
