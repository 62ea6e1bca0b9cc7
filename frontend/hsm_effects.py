"""The front-end's HSM effects as host commands, and the HSM's answers as the effects' results — sans-IO.

The shell sends :func:`hsm_commands` through its ``HsmClient`` (all of an effect's commands in one write); a
test hands the same commands to the HSM's own processor in-process. Either way :func:`hsm_result` reads the
answers, so the mapping from effect to commands exists once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from frontend.effects import (
    DecryptTrack,
    DecryptTrackBlock,
    GenerateArpc,
    GenerateMac,
    GenerateWorkingKeys,
    HsmEffect,
    VerifyArqc,
    VerifyMac,
    VerifyMacAndPin,
    VerifyPin,
)
from hsm_sim.client import (
    KQ_ARPC_ONLY,
    KQ_VERIFY_AND_ARPC,
    DukptPinCheck,
    HsmCommand,
    KeyType,
    MacAlgorithm,
    arpc_of,
    arqc_command,
    arqc_verified,
    decrypt_data_command,
    decrypted_data,
    dukpt_pin_command,
    generate_key_command,
    generate_mac_command,
    generated_key,
    generated_mac,
    mac_verified,
    pin_verdict,
    verify_mac_command,
    verify_pin_pvv_command,
)
from wire.dukpt import AES_KSN_LEN

#: The POS link's MAC (PROTOCOL.md §1) under the terminal's MAK (a TAK at the HSM).
POS_MAC: Final = MacAlgorithm.CUP_ECB
#: The working keys a sign-on generates, in the order field 62 carries them.
WORKING_KEYS: Final = (KeyType.TPK, KeyType.TAK)
#: A 004 sign-on also sends a track data key (PROTOCOL.md §8).
WORKING_KEYS_WITH_TDK: Final = (*WORKING_KEYS, KeyType.TDK)
#: M2 kind of a TDES DUKPT BDK, and track data in CBC mode (terminal/reader.py).
DUKPT_TDES_KIND: Final = "T"
#: M2 kind of an AES-128 DUKPT BDK (X9.24-3; a 12-byte KSN).
DUKPT_AES_KIND: Final = "A"
#: M2 kind of a track data key (a track's one encrypted block, ECB).
TDK_KIND: Final = "D"


def _verify_mac(effect: VerifyMac) -> HsmCommand:
    return verify_mac_command(KeyType.TAK, effect.mak_under_lmk, effect.data, effect.mac, POS_MAC)


def _verify_pin(effect: VerifyPin) -> HsmCommand:
    if effect.ksn is not None:
        return dukpt_pin_command(
            DukptPinCheck(
                bdk_under_lmk=effect.tpk_under_lmk,
                pvk_under_lmk=effect.pvk_under_lmk,
                ksn=effect.ksn,
                pin_block=effect.pin_block,
                pan=effect.pan,
                pvki=effect.pvki,
                pvv=effect.pvv,
            )
        )
    pin = (effect.tpk_under_lmk, effect.pvk_under_lmk, effect.pin_block, effect.pan, effect.pvki, effect.pvv)
    return verify_pin_pvv_command(pin)


def hsm_commands(effect: HsmEffect) -> list[HsmCommand]:
    """The host commands that carry out ``effect``, to be sent together."""
    match effect:
        case GenerateWorkingKeys(tmk_under_lmk=tmk, with_tdk=with_tdk):
            keys = WORKING_KEYS_WITH_TDK if with_tdk else WORKING_KEYS
            return [generate_key_command(key_type, under_tmk=tmk) for key_type in keys]
        case VerifyMac():
            return [_verify_mac(effect)]
        case GenerateMac(mak_under_lmk=mak, data=data):
            return [generate_mac_command(KeyType.TAK, mak, data, POS_MAC)]
        case VerifyPin():
            return [_verify_pin(effect)]
        case VerifyMacAndPin(mac=mac, pin=pin):
            return [_verify_mac(mac), _verify_pin(pin)]
        case VerifyArqc(check=check):
            return [arqc_command(check, KQ_VERIFY_AND_ARPC)]
        case GenerateArpc(check=check):
            return [arqc_command(check, KQ_ARPC_ONLY)]
        case DecryptTrack(bdk_under_lmk=bdk, ksn=ksn, ciphertext=data):
            kind = DUKPT_AES_KIND if len(ksn) == AES_KSN_LEN else DUKPT_TDES_KIND
            return [decrypt_data_command(kind, bdk, data, ksn=ksn, cbc=True)]
        case DecryptTrackBlock(tdk_under_lmk=tdk, block=block):
            return [decrypt_data_command(TDK_KIND, tdk, block, cbc=False)]


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
        case VerifyArqc():
            error, fields = answers[0]
            return arpc_of(fields) if arqc_verified(error) else None
        case GenerateArpc():
            return arpc_of(answers[0][1])
        case DecryptTrack() | DecryptTrackBlock():
            return decrypted_data(answers[0][1])
