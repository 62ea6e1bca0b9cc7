"""Key management commands: NC (diagnostics), A0 (generate key), BU (key check value).

Notation as in :mod:`hsm_sim.commands` (N decimal, H hex, A ASCII; keys are ``U`` + 32H under the LMK).

NC  diagnostics                 request: —
                                answer : LMK check value 16H ‖ firmware version 9A
A0  generate key                request: mode 1N (0 generate, 1 generate and export) ‖ key type code 3N ‖
                                         key scheme 1A (U) ‖ [mode 1: export key type code 3N (000 ZMK /
                                         102 TMK) ‖ export key U+32H] (exports: hsm_sim.usage.EXPORTABLE_UNDER)
                                answer : key under LMK U+32H ‖ [mode 1: X ‖ key under ZMK/TMK 32H] ‖
                                         check value 16H (acqsim returns the full 16H; payShield 6H)
BU  key check value             request: key type code 3N ‖ key U+32H
                                answer : check value 16H
"""

from __future__ import annotations

from typing import Final

from hsm_sim.commands.common import clear_key, key_type_field
from hsm_sim.keys import Lmk, encrypt_under_lmk
from hsm_sim.reader import FieldReader
from hsm_sim.usage import KeyUse, require_export
from wire.paycrypto import encrypt_key_under, generate_key, key_check_value

FIRMWARE_VERSION: Final = "0007-E000"


def nc_diagnostics(lmk: Lmk, reader: FieldReader) -> str:
    reader.end()
    return lmk.check_value + FIRMWARE_VERSION


def a0_generate_key(lmk: Lmk, reader: FieldReader) -> str:
    mode = reader.choice("01", "mode")
    key_type = key_type_field(reader, "key type", KeyUse.GENERATE)
    reader.choice("U", "key scheme")
    kek: bytes | None = None
    if mode == "1":
        export_type = key_type_field(reader, "export key type")
        require_export(key_type, export_type)
        kek = clear_key(lmk, export_type, reader.key("export key"), destination=True)
    reader.end()
    clear = generate_key(16)
    answer = encrypt_under_lmk(lmk, key_type, clear)
    if kek is not None:
        answer += "X" + encrypt_key_under(kek, clear).hex().upper()
    return answer + key_check_value(clear).hex().upper()


def bu_check_value(lmk: Lmk, reader: FieldReader) -> str:
    key_type = key_type_field(reader, "key type", KeyUse.CHECK_VALUE)
    clear = clear_key(lmk, key_type, reader.key("key"))
    reader.end()
    return key_check_value(clear).hex().upper()
