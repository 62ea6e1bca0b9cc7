"""Key import: A6 (import a key under a ZMK). Notation as in :mod:`hsm_sim.commands`.

A6  import key                  request: key type code 3N ‖ ZMK U+32H (under LMK) ‖ key under ZMK X+32H ‖
                                         key scheme (LMK) 1A (U)
                                answer : key under LMK U+32H ‖ check value 16H

The key under the ZMK is TDES-ECB under the clear ZMK (the X scheme of payShield's variant mode). A key that
fails the odd-parity check once unwrapped answers 10 (source key parity) — a wrong ZMK is caught that way.
The clear key never leaves this function.
"""

from __future__ import annotations

from hsm_sim.commands.common import clear_key, key_type_field
from hsm_sim.errors import CommandError, ErrorCode
from hsm_sim.keys import KeyType, Lmk, encrypt_under_lmk
from hsm_sim.reader import FieldReader
from wire.paycrypto import decrypt_key_under, has_odd_parity, key_check_value

IMPORTABLE_TYPES = frozenset(
    {
        KeyType.TMK,
        KeyType.TPK,
        KeyType.TAK,
        KeyType.ZPK,
        KeyType.ZAK,
        KeyType.PVK,
        KeyType.MK_AC,
        KeyType.BDK,
        KeyType.TDK,
    }
)


def a6_import_key(lmk: Lmk, reader: FieldReader) -> str:
    key_type = key_type_field(reader, "key type")
    if key_type not in IMPORTABLE_TYPES:
        raise CommandError(ErrorCode.INVALID_INPUT, f"{key_type} cannot be imported under a ZMK")
    zmk = clear_key(lmk, KeyType.ZMK, reader.key("ZMK"))
    reader.choice("X", "key under ZMK scheme")
    under_zmk = bytes.fromhex(reader.hex(32, "key under ZMK"))
    reader.choice("U", "key scheme (LMK)")
    reader.end()
    clear = decrypt_key_under(zmk, under_zmk)
    if not has_odd_parity(clear):
        raise CommandError(ErrorCode.SOURCE_KEY_PARITY, "imported key fails the parity check (wrong ZMK?)")
    return encrypt_under_lmk(lmk, key_type, clear) + key_check_value(clear).hex().upper()
