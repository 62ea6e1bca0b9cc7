"""PIN commands: CA (translate a PIN block TPK → ZPK), CC (ZPK → ZPK) and DC (verify a terminal PIN against a
Visa PVV).

CA  translate PIN TPK → ZPK     request: TPK U+32H ‖ ZPK U+32H ‖ max PIN length 2N ‖ PIN block 16H ‖
                                         source format 2N ‖ destination format 2N ‖ account number 12N
                                answer : PIN length 2N ‖ PIN block under ZPK 16H ‖ destination format 2N
CC  translate PIN ZPK → ZPK     request: source ZPK U+32H ‖ destination ZPK U+32H ‖ max PIN length 2N ‖
                                         PIN block 16H ‖ source format 2N ‖ destination format 2N ‖ account
                                         number 12N
                                answer : PIN length 2N ‖ PIN block under the destination ZPK 16H ‖
                                         destination format 2N
DC  verify PIN (Visa PVV)       request: TPK U+32H ‖ PVK U+32H ‖ PIN block 16H ‖ format 2N ‖ account
                                         number 12N ‖ PVKI 1N ‖ PVV 4N
                                answer : — (error 01: wrong PIN)
EC  verify interchange PIN      request: ZPK U+32H ‖ PVK U+32H ‖ PIN block 16H ‖ format 2N ‖ account
    (Visa PVV)                           number 12N ‖ PVKI 1N ‖ PVV 4N
                                answer : — (error 01: wrong PIN); DC's layout with a zone PIN key: an issuer
                                         verifies a PIN that came to it through the switch

PIN block format codes (payShield): 01 ISO 9564 format 0, 05 format 1, 47 format 3. The account number is
the 12 rightmost PAN digits excluding the check digit.

The clear PIN exists only inside these functions; errors say what was wrong with the block, never its digits.

No PIN oracle: DC answers 01 both for a wrong PIN and for a PIN block that does not decrypt to a valid block
(payShield would answer 20), so a client cannot learn which block decrypts to a well-formed PIN; the true code
(20) goes only to the audit log. CA, a translation, keeps 20. Failures per account and verifications per client
are limited by :mod:`hsm_sim.pin_guard` (the processor applies it around DC and EC, using :func:`dc_account`).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Final

from hsm_sim.commands.common import PIN_FORMAT_CODES, account_pan, clear_key, ecb_key, pin_format_field
from hsm_sim.errors import CommandError, ErrorCode
from hsm_sim.keys import KeyType, Lmk
from hsm_sim.reader import FieldReader
from hsm_sim.usage import KeyUse
from wire.paycrypto import (
    CryptoInputError,
    PinBlockError,
    PinBlockFormat,
    build_pin_block,
    extract_pin,
    tdes_ecb_encrypt,
    visa_pvv,
)


def _clear_pin(key: bytes, block_hex: str, fmt: PinBlockFormat, account: str) -> str:
    try:
        # the PIN keys a front-end or a switch names are few and long-lived: their contexts are cached
        return extract_pin(ecb_key(key).decrypt(bytes.fromhex(block_hex)), account_pan(account), fmt)
    except PinBlockError as exc:
        raise CommandError(ErrorCode.PIN_BLOCK_INVALID, str(exc)) from None


#: Where DC's (and EC's) account number field starts: after TPK or ZPK (33), PVK (33), PIN block (16) and format (2).
DC_ACCOUNT_OFFSET: Final = 33 + 33 + 16 + 2
DC_ACCOUNT_LEN: Final = 12


def dc_account(fields: bytes) -> str | None:
    """The account number of a DC request's fields (after the command code), or ``None`` if it has none."""
    account = fields[DC_ACCOUNT_OFFSET : DC_ACCOUNT_OFFSET + DC_ACCOUNT_LEN]
    return account.decode("ascii") if len(account) == DC_ACCOUNT_LEN and account.isdigit() else None


def ca_translate_pin(lmk: Lmk, reader: FieldReader) -> str:
    tpk = clear_key(lmk, KeyType.TPK, reader.key("TPK"), use=KeyUse.PIN_DECRYPT)
    zpk = clear_key(lmk, KeyType.ZPK, reader.key("ZPK"), destination=True, use=KeyUse.PIN_ENCRYPT)
    return _translate(tpk, zpk, reader)


def cc_translate_pin_zone(lmk: Lmk, reader: FieldReader) -> str:
    """A PIN block from one zone's ZPK to another's (a switch between acquirer and issuer)."""
    source = clear_key(lmk, KeyType.ZPK, reader.key("source ZPK"), use=KeyUse.PIN_DECRYPT)
    destination = clear_key(lmk, KeyType.ZPK, reader.key("destination ZPK"), destination=True, use=KeyUse.PIN_ENCRYPT)
    return _translate(source, destination, reader)


def _translate(source_key: bytes, destination_key: bytes, reader: FieldReader) -> str:
    """The fields CA and CC share, after their two keys: decrypt under one key, re-encrypt under the other."""
    max_len = int(reader.digits(2, "maximum PIN length"))
    block = reader.hex(16, "PIN block")
    source = pin_format_field(reader, "source PIN block format")
    dest_code = reader.digits(2, "destination PIN block format")
    if dest_code not in PIN_FORMAT_CODES:
        raise CommandError(ErrorCode.INVALID_PIN_BLOCK_FORMAT, f"unsupported destination format {dest_code}")
    account = reader.digits(12, "account number")
    reader.end()
    pin = _clear_pin(source_key, block, source, account)
    if len(pin) > max_len:
        raise CommandError(ErrorCode.PIN_BLOCK_INVALID, "PIN longer than the maximum PIN length")
    out = tdes_ecb_encrypt(destination_key, build_pin_block(pin, account_pan(account), PIN_FORMAT_CODES[dest_code]))
    return f"{len(pin):02d}" + out.hex().upper() + dest_code


def dc_verify_pin_pvv(lmk: Lmk, reader: FieldReader) -> str:
    tpk = clear_key(lmk, KeyType.TPK, reader.key("TPK"), use=KeyUse.PIN_DECRYPT)
    return _verify_pvv(lmk, tpk, reader)


def ec_verify_interchange_pin_pvv(lmk: Lmk, reader: FieldReader) -> str:
    zpk = clear_key(lmk, KeyType.ZPK, reader.key("ZPK"), use=KeyUse.PIN_DECRYPT)
    return _verify_pvv(lmk, zpk, reader)


def _verify_pvv(lmk: Lmk, pin_key: bytes, reader: FieldReader) -> str:
    """DC and EC after their PIN key: the PIN under ``pin_key`` against the PVV (no PIN oracle: see above)."""
    pvk = clear_key(lmk, KeyType.PVK, reader.key("PVK"), destination=True, use=KeyUse.PIN_VERIFY)
    block = reader.hex(16, "PIN block")
    fmt = pin_format_field(reader, "PIN block format")
    account = reader.digits(12, "account number")
    pvki = reader.digits(1, "PVKI")
    pvv = reader.digits(4, "PVV")
    reader.end()
    verify_pin_block_pvv(pin_key, pvk, block, fmt, (account, pvki, pvv))
    return ""


def verify_pin_block_pvv(
    pin_key: bytes, pvk: bytes, block: str, fmt: PinBlockFormat, account_pvki_pvv: tuple[str, str, str]
) -> None:
    """Answer 01 unless ``block`` (hex, under ``pin_key``) holds the PIN whose Visa PVV is the one given; a
    malformed block is answered 01 too (its true code, 20, goes to the audit log only). DC and GQ share it."""
    verify_clear_pin_pvv(lambda: _clear_pin(pin_key, block, fmt, account_pvki_pvv[0]), pvk, account_pvki_pvv)


def verify_clear_pin_pvv(clear_pin: Callable[[], str], pvk: bytes, account_pvki_pvv: tuple[str, str, str]) -> None:
    """:func:`verify_pin_block_pvv` for any PIN block: ``clear_pin`` opens it (raising :class:`CommandError` for
    a block that does not decode), inside the same answer-01 rule."""
    account, pvki, pvv = account_pvki_pvv
    try:
        pin = clear_pin()
        expected = visa_pvv(ecb_key(pvk), account_pan(account), pvki, pin)
    except CommandError as exc:  # the block's contents: answered as a wrong PIN
        raise CommandError(ErrorCode.VERIFICATION_FAILED, exc.reason, true_code=exc.code) from None
    except CryptoInputError as exc:  # e.g. a PIN too short or long for the PVV: the block's contents too
        raise CommandError(ErrorCode.VERIFICATION_FAILED, str(exc), true_code=ErrorCode.PIN_BLOCK_INVALID) from None
    if not hmac.compare_digest(expected, pvv):
        raise CommandError(ErrorCode.VERIFICATION_FAILED, "PIN does not verify")
