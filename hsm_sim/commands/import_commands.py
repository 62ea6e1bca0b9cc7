"""Key import: A6 (import a key under a ZMK) and A4 (form a key from clear components). Notation as in
:mod:`hsm_sim.commands`.

A6  import key                  request: key type code 3N ‖ ZMK U+32H (under LMK) ‖ key under ZMK X+32H ‖
                                         key scheme (LMK) 1A (U)
                                answer : key under LMK U+32H ‖ check value 16H
A4  form key from components    request: number of components 1N (2-9) ‖ key type code 3N ‖ key scheme
                                         (LMK) 1A (U) ‖ components, each 32H, clear, odd parity
                                answer : key under LMK U+32H ‖ check value 16H

The key under the ZMK is TDES-ECB under the clear ZMK (the X scheme of payShield's variant mode). A key that
fails the odd-parity check once unwrapped answers 10 (source key parity) — a wrong ZMK is caught that way.

A4 keeps payShield's command code and shape ("form a key from encrypted components"), but takes the components
in clear, as payShield's console command FK does: acqsim has no console, and a key ceremony of TEST keys needs
no paper. Because a clear component crossing the host link is what a real HSM forbids, the processor answers
A4 with 68 (command disabled) unless the HSM's own configuration says ``[hsm] allow_clear_import = true``.
The key is the XOR of the components with its parity then forced odd (as payShield forms a key); each component
must have odd parity itself (10 otherwise). The clear components and key never leave these functions; errors
name the component by number, never its value.
"""

from __future__ import annotations

from typing import Final

from hsm_sim.commands.common import clear_key, key_type_field
from hsm_sim.errors import CommandError, ErrorCode
from hsm_sim.keys import KEY_HEX_LEN, KeyType, Lmk, encrypt_under_lmk
from hsm_sim.reader import FieldReader
from wire.paycrypto import decrypt_key_under, has_odd_parity, key_check_value, with_odd_parity, xor

IMPORTABLE_TYPES = frozenset({KeyType.TMK, KeyType.TPK, KeyType.TAK, KeyType.ZPK, KeyType.ZAK, KeyType.PVK})
#: Key types A4 may form: the key-encrypting keys a ceremony loads, and the PVK.
COMPONENT_TYPES: Final = frozenset({KeyType.ZMK, KeyType.TMK, KeyType.PVK})
MIN_COMPONENTS: Final = 2
MAX_COMPONENTS: Final = 9


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


def a4_form_key_from_components(lmk: Lmk, reader: FieldReader) -> str:
    count = int(reader.digits(1, "number of components"))
    if not MIN_COMPONENTS <= count <= MAX_COMPONENTS:
        raise CommandError(ErrorCode.INVALID_INPUT, f"{count} components: give {MIN_COMPONENTS} to {MAX_COMPONENTS}")
    key_type = key_type_field(reader, "key type")
    if key_type not in COMPONENT_TYPES:
        raise CommandError(ErrorCode.INVALID_INPUT, f"a {key_type} is not formed from components")
    reader.choice("U", "key scheme (LMK)")
    key = bytes(KEY_HEX_LEN // 2)
    for number in range(1, count + 1):
        component = bytes.fromhex(reader.hex(KEY_HEX_LEN, f"component {number}"))
        if not has_odd_parity(component):
            raise CommandError(ErrorCode.SOURCE_KEY_PARITY, f"component {number} fails the parity check")
        key = xor(key, component)
    reader.end()
    key = with_odd_parity(key)
    return encrypt_under_lmk(lmk, key_type, key) + key_check_value(key).hex().upper()
