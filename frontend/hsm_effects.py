"""The front-end's HSM effects as host commands, and the HSM's answers as the effects' results — sans-IO.

The shell sends :func:`hsm_commands` through its ``HsmClient`` (all of an effect's commands in one write); a
test hands the same commands to the HSM's own processor in-process. Either way :func:`hsm_result` reads the
answers, so the mapping from effect to commands exists once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from frontend.effects import GenerateMac, GenerateWorkingKeys, HsmEffect, VerifyMac, VerifyMacAndPin, VerifyPin
from hsm_sim.client import (
    HsmCommand,
    KeyType,
    MacAlgorithm,
    generate_key_command,
    generate_mac_command,
    generated_key,
    generated_mac,
    mac_verified,
    pin_verdict,
    verify_mac_command,
    verify_pin_pvv_command,
)

#: The POS link's MAC (PROTOCOL.md §1) under the terminal's MAK (a TAK at the HSM).
POS_MAC: Final = MacAlgorithm.CUP_ECB
#: The working keys a sign-on generates, in the order field 62 carries them.
WORKING_KEYS: Final = (KeyType.TPK, KeyType.TAK)


def _verify_mac(effect: VerifyMac) -> HsmCommand:
    return verify_mac_command(KeyType.TAK, effect.mak_under_lmk, effect.data, effect.mac, POS_MAC)


def _verify_pin(effect: VerifyPin) -> HsmCommand:
    pin = (effect.tpk_under_lmk, effect.pvk_under_lmk, effect.pin_block, effect.pan, effect.pvki, effect.pvv)
    return verify_pin_pvv_command(pin)


def hsm_commands(effect: HsmEffect) -> list[HsmCommand]:
    """The host commands that carry out ``effect``, to be sent together."""
    match effect:
        case GenerateWorkingKeys(tmk_under_lmk=tmk):
            return [generate_key_command(key_type, under_tmk=tmk) for key_type in WORKING_KEYS]
        case VerifyMac():
            return [_verify_mac(effect)]
        case GenerateMac(mak_under_lmk=mak, data=data):
            return [generate_mac_command(KeyType.TAK, mak, data, POS_MAC)]
        case VerifyPin():
            return [_verify_pin(effect)]
        case VerifyMacAndPin(mac=mac, pin=pin):
            return [_verify_mac(mac), _verify_pin(pin)]


def hsm_result(effect: HsmEffect, answers: Sequence[tuple[str, bytes]]) -> Any:
    """The effect's result from its commands' (error code, fields) answers."""
    match effect:
        case GenerateWorkingKeys():
            return tuple(generated_key(fields, exported=True) for _, fields in answers)
        case VerifyMac():
            return mac_verified(answers[0][0])
        case GenerateMac():
            return generated_mac(answers[0][1])
        case VerifyPin():
            return pin_verdict(answers[0][0])
        case VerifyMacAndPin():
            return mac_verified(answers[0][0]), pin_verdict(answers[1][0])
