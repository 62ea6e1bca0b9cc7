"""LMK change: BW (translate a key from the old LMK to the new LMK). Notation as in :mod:`hsm_sim.commands`.

BW  translate key to new LMK    request: key type code 3N ‖ key under the old LMK U+32H
                                answer : key under the new LMK U+32H ‖ check value 16H

As on a payShield, the old LMK sits in the HSM's key change storage beside the (new) live LMK; only an HSM
loaded with both (``acqsim hsm lmk rotate``) knows BW — any other answers 68. The key is decrypted under the
old LMK's variant for its type (10 if it fails parity: corrupt, or of another type) and encrypted under the
new one's; its check value is unchanged, which is how a rotation proves nothing but the wrapping changed.
"""

from __future__ import annotations

from hsm_sim.commands.common import key_type_field
from hsm_sim.errors import CommandError, ErrorCode
from hsm_sim.keys import KeyParityError, Lmk, decrypt_under_lmk, encrypt_under_lmk
from hsm_sim.reader import FieldReader
from wire.paycrypto import key_check_value


def bw_translate_to_new_lmk(old_lmk: Lmk, lmk: Lmk, reader: FieldReader) -> str:
    key_type = key_type_field(reader, "key type")
    under_old = reader.key("key under old LMK")
    reader.end()
    try:
        clear = decrypt_under_lmk(old_lmk, key_type, under_old)
    except KeyParityError:
        raise CommandError(
            ErrorCode.SOURCE_KEY_PARITY, f"{key_type} fails the parity check under the old LMK"
        ) from None
    return encrypt_under_lmk(lmk, key_type, clear) + key_check_value(clear).hex().upper()
