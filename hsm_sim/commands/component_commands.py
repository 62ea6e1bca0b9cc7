"""Key forming: A4 (form a key from clear components). Notation as in :mod:`hsm_sim.commands`.

A4  form key from components    request: number of components 1N (2-9) ‖ key type code 3N ‖ key scheme
                                         (LMK) 1A (U) ‖ components, each 32H, clear, odd parity
                                answer : key under LMK U+32H ‖ check value 16H

A4 keeps payShield's command code and shape ("form a key from encrypted components"), but takes the components
in clear, as payShield's console command FK does: acqsim has no console, and a key ceremony of TEST keys needs
no paper. Because a clear component crossing the host link is what a real HSM forbids, the processor answers
A4 with 68 (command disabled) unless the HSM's own configuration says ``[hsm] allow_clear_import = true``.
The key is the XOR of the components with its parity then forced odd (as payShield forms a key); each component
must have odd parity itself (10 otherwise). The clear components and key never leave this function; errors
name the component by number, never its value.
"""

from __future__ import annotations

from typing import Final

from hsm_sim.commands.common import key_type_field
from hsm_sim.errors import CommandError, ErrorCode
from hsm_sim.keys import KEY_HEX_LEN, KeyType, Lmk, encrypt_under_lmk
from hsm_sim.reader import FieldReader
from wire.paycrypto import has_odd_parity, key_check_value, with_odd_parity, xor

#: Key types A4 may form: the key-encrypting keys a ceremony loads, and the PVK.
#: (the IMK-AC and the DUKPT BDK too: base keys that never travel under another key, issue #18; and a
#: terminal's long-lived merchant-link HMAC key, loaded beside its TMK: docs/smartpos.md, "Authentication")
COMPONENT_TYPES: Final = frozenset({KeyType.ZMK, KeyType.TMK, KeyType.PVK, KeyType.MK_AC, KeyType.BDK, KeyType.HMK})
MIN_COMPONENTS: Final = 2
MAX_COMPONENTS: Final = 9


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
