"""DUKPT commands: G0 (translate a DUKPT PIN block to a ZPK), GQ (verify a DUKPT PIN block against a Visa
PVV) and M2 (decrypt data under a DUKPT data key or a TDK). Notation as in :mod:`hsm_sim.commands`.

G0  DUKPT PIN → ZPK             request: BDK U+32H ‖ ZPK U+32H ‖ KSN 20H ‖ PIN block 16H (ISO 9564
                                         format 0 under the TDES DUKPT PIN key) ‖ destination format 2N ‖
                                         account number 12N
                                AES    : A ‖ BDK U+32H ‖ ZPK U+32H ‖ KSN 24H ‖ PIN block 32H (ISO 9564
                                         format 4 under the AES-128 DUKPT PIN key, X9.24-3) ‖ destination
                                         format 2N ‖ PAN length 2N ‖ PAN n (12 to 19 digits: format 4 binds the
                                         whole PAN)
                                answer : PIN length 2N ‖ PIN block under ZPK 16H ‖ destination format 2N
GQ  verify DUKPT PIN (PVV)      request: BDK U+32H ‖ PVK U+32H ‖ KSN 20H ‖ PIN block 16H ‖ format 2N ‖
                                         account number 12N ‖ PVKI 1N ‖ PVV 4N
                                AES    : A ‖ BDK U+32H ‖ PVK U+32H ‖ KSN 24H ‖ PIN block 32H (format 4) ‖
                                         PAN length 2N ‖ PAN n ‖ PVKI 1N ‖ PVV 4N
                                answer : — (error 01: wrong PIN, or a block that does not decode)
M2  decrypt data                request: key kind 1A (T TDES DUKPT BDK, A AES-128 DUKPT BDK, D TDK) ‖
                                         key U+32H ‖ [T: KSN 20H] [A: KSN 24H] ‖ cipher mode 1N (0 ECB,
                                         1 CBC with a zero IV) ‖ data length 4N (bytes; a multiple of the
                                         block, 8 TDES / 16 AES; at most 4096) ‖ data H
                                answer : data length 4N ‖ clear data H

A KSN whose counter DUKPT never uses (0, too many bits set) answers 15. The derived keys exist only inside
these functions: no command answers one. G0 and GQ take TDES DUKPT (ISO 9564 format 0, 8 bytes) or, after the
leading ``A``, AES-128 DUKPT (format 4, 16 bytes, with the whole PAN). GQ is limited like DC
(:mod:`hsm_sim.pin_guard`, by the account number of either layout) and, like DC, answers a malformed PIN
block as a wrong PIN.
"""

from __future__ import annotations

from typing import Final

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from hsm_sim.commands.common import PIN_FORMAT_CODES, account_pan, clear_key, pin_format_field
from hsm_sim.commands.pin_commands import verify_clear_pin_pvv, verify_pin_block_pvv
from hsm_sim.errors import CommandError, ErrorCode
from hsm_sim.keys import KeyType, Lmk
from hsm_sim.reader import FieldReader
from hsm_sim.usage import KeyUse
from wire import pinblock4
from wire.dukpt import DukptError, KeyUsage, aes_derive, tdes_derive
from wire.paycrypto import (
    BLOCK,
    PinBlockError,
    PinBlockFormat,
    build_pin_block,
    extract_pin,
    tdes_cbc_decrypt,
    tdes_ecb_decrypt,
    tdes_ecb_encrypt,
)

TDES_KSN_HEX: Final = 20
AES_KSN_HEX: Final = 24
AES_BLOCK: Final = 16
MAX_DATA_LEN: Final = 4096
KIND_TDES_DUKPT: Final = "T"
KIND_AES_DUKPT: Final = "A"
KIND_TDK: Final = "D"
CIPHER_ECB: Final = "0"
#: The leading flag of G0's and GQ's AES DUKPT layout.
AES_LAYOUT: Final = "A"
AES_PIN_BLOCK_HEX: Final = 32
#: Where GQ's account number starts: after BDK (33), PVK (33), KSN (20), PIN block (16) and format (2).
GQ_ACCOUNT_OFFSET: Final = 33 + 33 + TDES_KSN_HEX + 16 + 2
GQ_ACCOUNT_LEN: Final = 12
#: Where the AES layout's PAN length starts: after the flag (1), BDK (33), PVK (33), KSN (24), PIN block (32).
GQ_AES_PAN_OFFSET: Final = 1 + 33 + 33 + AES_KSN_HEX + AES_PIN_BLOCK_HEX
MIN_PAN_DIGITS: Final = 12
MAX_PAN_DIGITS: Final = 19


def _account_of(pan: str) -> str:
    """The 12 rightmost PAN digits without the check digit: what the PVV (and a format 0 block) binds."""
    return pan[-13:-1].rjust(GQ_ACCOUNT_LEN, "0")


def gq_account(fields: bytes) -> str | None:
    """The account number of a GQ request's fields, or ``None`` (for the PIN verification limits)."""
    if fields.startswith(AES_LAYOUT.encode("ascii")):
        length = fields[GQ_AES_PAN_OFFSET : GQ_AES_PAN_OFFSET + 2]
        if not length.isdigit():
            return None
        pan = fields[GQ_AES_PAN_OFFSET + 2 : GQ_AES_PAN_OFFSET + 2 + int(length)]
        return _account_of(pan.decode("ascii")) if len(pan) == int(length) and pan.isdigit() else None
    account = fields[GQ_ACCOUNT_OFFSET : GQ_ACCOUNT_OFFSET + GQ_ACCOUNT_LEN]
    return account.decode("ascii") if len(account) == GQ_ACCOUNT_LEN and account.isdigit() else None


def _read_pan(reader: FieldReader) -> str:
    length = int(reader.digits(2, "PAN length"))
    if not MIN_PAN_DIGITS <= length <= MAX_PAN_DIGITS:
        raise CommandError(ErrorCode.INVALID_INPUT, f"PAN length {length}: not {MIN_PAN_DIGITS} to {MAX_PAN_DIGITS}")
    return reader.digits(length, "PAN")


def _aes_pin(pin_key: bytes, block_hex: str, pan: str) -> str:
    try:
        return pinblock4.decipher(pin_key, bytes.fromhex(block_hex), pan)
    except PinBlockError as exc:
        raise CommandError(ErrorCode.PIN_BLOCK_INVALID, str(exc)) from None


def _derive(bdk: bytes, ksn_hex: str, usage: KeyUsage, *, aes: bool = False) -> bytes:
    try:
        return (aes_derive if aes else tdes_derive)(bdk, bytes.fromhex(ksn_hex), usage)
    except DukptError as exc:
        raise CommandError(ErrorCode.INVALID_INPUT, f"KSN: {exc}") from None


def g0_translate_dukpt_pin(lmk: Lmk, reader: FieldReader) -> str:
    aes = reader.marker(AES_LAYOUT)
    bdk = clear_key(lmk, KeyType.BDK, reader.key("BDK"), use=KeyUse.DUKPT_DERIVE)
    zpk = clear_key(lmk, KeyType.ZPK, reader.key("ZPK"), destination=True, use=KeyUse.PIN_ENCRYPT)
    ksn = reader.hex(AES_KSN_HEX if aes else TDES_KSN_HEX, "KSN")
    block_hex = reader.hex(AES_PIN_BLOCK_HEX if aes else 16, "PIN block")
    dest_code = reader.digits(2, "destination PIN block format")
    if dest_code not in PIN_FORMAT_CODES:
        raise CommandError(ErrorCode.INVALID_PIN_BLOCK_FORMAT, f"unsupported destination format {dest_code}")
    pan = _read_pan(reader) if aes else ""
    account = _account_of(pan) if aes else reader.digits(12, "account number")
    reader.end()
    pin_key = _derive(bdk, ksn, KeyUsage.PIN, aes=aes)
    if aes:
        pin = _aes_pin(pin_key, block_hex, pan)
    else:
        try:
            block = bytes.fromhex(block_hex)
            pin = extract_pin(tdes_ecb_decrypt(pin_key, block), account_pan(account), PinBlockFormat.ISO0)
        except PinBlockError as exc:
            raise CommandError(ErrorCode.PIN_BLOCK_INVALID, str(exc)) from None
    out = tdes_ecb_encrypt(zpk, build_pin_block(pin, account_pan(account), PIN_FORMAT_CODES[dest_code]))
    return f"{len(pin):02d}" + out.hex().upper() + dest_code


def gq_verify_dukpt_pin_pvv(lmk: Lmk, reader: FieldReader) -> str:
    if reader.marker(AES_LAYOUT):
        return _gq_aes(lmk, reader)
    bdk = clear_key(lmk, KeyType.BDK, reader.key("BDK"), use=KeyUse.DUKPT_DERIVE)
    pvk = clear_key(lmk, KeyType.PVK, reader.key("PVK"), destination=True, use=KeyUse.PIN_VERIFY)
    ksn = reader.hex(TDES_KSN_HEX, "KSN")
    block = reader.hex(16, "PIN block")
    fmt = pin_format_field(reader, "PIN block format")
    account = reader.digits(12, "account number")
    pvki = reader.digits(1, "PVKI")
    pvv = reader.digits(4, "PVV")
    reader.end()
    pin_key = _derive(bdk, ksn, KeyUsage.PIN)
    verify_pin_block_pvv(pin_key, pvk, block, fmt, (account, pvki, pvv))
    return ""


def _gq_aes(lmk: Lmk, reader: FieldReader) -> str:
    bdk = clear_key(lmk, KeyType.BDK, reader.key("BDK"), use=KeyUse.DUKPT_DERIVE)
    pvk = clear_key(lmk, KeyType.PVK, reader.key("PVK"), destination=True, use=KeyUse.PIN_VERIFY)
    ksn = reader.hex(AES_KSN_HEX, "KSN")
    block = reader.hex(AES_PIN_BLOCK_HEX, "PIN block")
    pan = _read_pan(reader)
    pvki = reader.digits(1, "PVKI")
    pvv = reader.digits(4, "PVV")
    reader.end()
    pin_key = _derive(bdk, ksn, KeyUsage.PIN, aes=True)
    verify_clear_pin_pvv(lambda: _aes_pin(pin_key, block, pan), pvk, (_account_of(pan), pvki, pvv))
    return ""


def m2_decrypt_data(lmk: Lmk, reader: FieldReader) -> str:
    kind = reader.choice(KIND_TDES_DUKPT + KIND_AES_DUKPT + KIND_TDK, "key kind")
    if kind == KIND_TDK:
        key = clear_key(lmk, KeyType.TDK, reader.key("TDK"), use=KeyUse.DATA_DECRYPT)
    else:
        bdk = clear_key(lmk, KeyType.BDK, reader.key("BDK"), use=KeyUse.DUKPT_DERIVE)
        ksn = reader.hex(AES_KSN_HEX if kind == KIND_AES_DUKPT else TDES_KSN_HEX, "KSN")
    cipher_mode = reader.choice("01", "cipher mode")
    length = int(reader.digits(4, "data length"))
    block = AES_BLOCK if kind == KIND_AES_DUKPT else BLOCK
    if length == 0 or length % block or length > MAX_DATA_LEN:
        raise CommandError(ErrorCode.INVALID_INPUT, f"data length {length}: not a multiple of {block} up to 4096")
    data = bytes.fromhex(reader.hex(2 * length, "data"))
    reader.end()
    if kind != KIND_TDK:
        key = _derive(bdk, ksn, KeyUsage.DATA, aes=kind == KIND_AES_DUKPT)
    if kind == KIND_AES_DUKPT:
        ecb = cipher_mode == CIPHER_ECB
        mode: modes.ECB | modes.CBC = modes.ECB() if ecb else modes.CBC(bytes(AES_BLOCK))  # noqa: S305 - as asked
        decryptor = Cipher(algorithms.AES(key), mode).decryptor()
        clear = decryptor.update(data) + decryptor.finalize()
    else:
        clear = tdes_ecb_decrypt(key, data) if cipher_mode == CIPHER_ECB else tdes_cbc_decrypt(key, data)
    return f"{length:04d}" + clear.hex().upper()
