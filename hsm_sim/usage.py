"""Key usage: what each key type may do, and what each command does with the keys it names.

One table, checked before any cryptography: a command names (or implies) a key type for each key it takes,
and the type must permit the command's use of it. The variant LMK would make a key of another type fail
parity (10/11) anyway; this check is on the declared type, so a MAC key cannot even be *asked* to verify a
PIN, and answers payShield's code for it (28 invalid key type, 29 export not permitted; docs/hsm.md).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Final

from hsm_sim.errors import CommandError, ErrorCode
from hsm_sim.keys import KeyType


class KeyUse(enum.StrEnum):
    GENERATE = "generate"  # A0: created under the LMK
    CHECK_VALUE = "check-value"  # BU
    MAC = "mac"  # M6 generate, M8 verify
    PIN_DECRYPT = "pin-decrypt"  # source key of CA / CC / DC: the PIN block arrives under it
    PIN_ENCRYPT = "pin-encrypt"  # destination key of CA / CC
    PIN_VERIFY = "pin-verify"  # DC: the PVV is derived under it
    KEY_ENCRYPT = "key-encrypt"  # A0 mode 1: other keys are exported under it
    CRYPTOGRAM = "cryptogram"  # KQ: card keys derive from it to verify an ARQC and answer an ARPC
    DUKPT_DERIVE = "dukpt-derive"  # G0 / GQ / M2: transaction keys derive from it and the KSN
    DATA_DECRYPT = "data-decrypt"  # M2: data (track 2) arrives under it


_WORKING: Final = frozenset({KeyUse.GENERATE, KeyUse.CHECK_VALUE})

#: Key type → the uses it permits.
KEY_USES: Final[Mapping[KeyType, frozenset[KeyUse]]] = {
    KeyType.ZMK: _WORKING | {KeyUse.KEY_ENCRYPT},
    KeyType.TMK: _WORKING | {KeyUse.KEY_ENCRYPT},
    KeyType.ZPK: _WORKING | {KeyUse.PIN_DECRYPT, KeyUse.PIN_ENCRYPT},
    KeyType.TPK: _WORKING | {KeyUse.PIN_DECRYPT},
    KeyType.TAK: _WORKING | {KeyUse.MAC},
    KeyType.ZAK: _WORKING | {KeyUse.MAC},
    KeyType.PVK: _WORKING | {KeyUse.PIN_VERIFY},
    KeyType.MK_AC: _WORKING | {KeyUse.CRYPTOGRAM},
    KeyType.BDK: _WORKING | {KeyUse.DUKPT_DERIVE},
    KeyType.TDK: _WORKING | {KeyUse.DATA_DECRYPT},
    KeyType.HMK: _WORKING | {KeyUse.MAC},
}

#: Key-encrypting key type → the key types A0 may export under it. A PVK never leaves the HSM; a ZMK or TMK
#: is never exported under a working key (nor a ZMK under anything: it arrives as components). A BDK or MK-AC
#: never leaves the HSM; a TDK goes to its terminal at a 004 sign-on.
EXPORTABLE_UNDER: Final[Mapping[KeyType, frozenset[KeyType]]] = {
    KeyType.TMK: frozenset({KeyType.TPK, KeyType.TAK, KeyType.TDK}),
    KeyType.ZMK: frozenset({KeyType.ZPK, KeyType.ZAK, KeyType.TMK}),
}

#: Command → the use it makes of each key it takes, in field order.
COMMAND_KEY_USES: Final[Mapping[str, tuple[KeyUse, ...]]] = {
    "A0": (KeyUse.GENERATE, KeyUse.KEY_ENCRYPT),
    "BU": (KeyUse.CHECK_VALUE,),
    "M6": (KeyUse.MAC,),
    "M8": (KeyUse.MAC,),
    "CA": (KeyUse.PIN_DECRYPT, KeyUse.PIN_ENCRYPT),
    "CC": (KeyUse.PIN_DECRYPT, KeyUse.PIN_ENCRYPT),
    "DC": (KeyUse.PIN_DECRYPT, KeyUse.PIN_VERIFY),
    "EC": (KeyUse.PIN_DECRYPT, KeyUse.PIN_VERIFY),
    "KQ": (KeyUse.CRYPTOGRAM,),
    "G0": (KeyUse.DUKPT_DERIVE, KeyUse.PIN_ENCRYPT),
    "GQ": (KeyUse.DUKPT_DERIVE, KeyUse.PIN_VERIFY),
    "M2": (KeyUse.DUKPT_DERIVE,),  # or DATA_DECRYPT, when the key is a TDK
}


def require_use(key_type: KeyType, use: KeyUse, what: str) -> None:
    """Raise :class:`CommandError` 28 unless ``key_type`` permits ``use``."""
    if use not in KEY_USES[key_type]:
        raise CommandError(ErrorCode.INVALID_KEY_TYPE, f"{what}: a {key_type} may not be used for {use}")


def require_export(key_type: KeyType, kek_type: KeyType) -> None:
    """Raise :class:`CommandError` 28 unless ``kek_type`` encrypts keys, 29 unless it may carry ``key_type``."""
    require_use(kek_type, KeyUse.KEY_ENCRYPT, "export key")
    if key_type not in EXPORTABLE_UNDER.get(kek_type, frozenset()):
        raise CommandError(ErrorCode.KEY_FUNCTION_NOT_PERMITTED, f"a {key_type} may not be exported under a {kek_type}")
