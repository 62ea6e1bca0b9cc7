"""KQ (ARQC / ARPC), G0 / GQ (DUKPT PIN) and M2 (DUKPT / TDK data) with the published vectors of
PROTOCOL.md §7–§8, and their error codes."""

from __future__ import annotations

import dataclasses
import functools
import warnings

import anyio
import psec.pinblock
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from hsm_sim.client import ArqcCheck, DukptPinCheck, HsmClient, PinVerification
from hsm_sim.commands.dukpt_commands import gq_account
from hsm_sim.keys import DEFAULT_TEST_LMK, KeyType, encrypt_under_lmk
from hsm_sim.processor import HsmProcessor
from hsm_sim.server import serve
from wire.dukpt import KeyUsage, aes_derive, tdes_derive
from wire.emv import SessionKeyMethod, arpc_method_2, derive_icc_master_key, derive_session_key
from wire.paycrypto import (
    build_pin_block,
    tdes_cbc_encrypt,
    tdes_ecb_decrypt,
    tdes_ecb_encrypt,
    visa_pvv,
    with_odd_parity,
)

LMK = DEFAULT_TEST_LMK
IMK_AC = with_odd_parity(bytes.fromhex("F0C34A8124CEE0A91A0B034AA97D6EAC"))  # DES ignores the parity bits
PAN, PSN, ATC = "6228000100001", "01", "0240"
DATA = "000000000001000000000000015600800460000156140701001E78EEBC7D00024003A04002"
ARQC = "5D016C91005E7CC2"
BDK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
AES_BDK = bytes.fromhex("FEDCBA9876543210F1F1F1F1F1F1F1F1")
ZPK = bytes.fromhex("89B07A34A1B3F47F4A5B6879E9D9C7B6")
PVK = bytes.fromhex("7A3D5E1F2A4C6B8C9E0E1A2A3D4C5E6E")
DUKPT_PAN = "4012345678909"
KSN_1 = "FFFF9876543210E00001"
DUKPT_BLOCK = "1B9C1845EB993A7A"  # PIN 1234 under the PIN key of KSN ...E00001 (PROTOCOL.md §8)


def call(command: str, fields: str) -> str:
    return HsmProcessor(LMK).handle(b"0001" + command.encode() + fields.encode("ascii")).decode("ascii")


def under(key_type: KeyType, key: bytes) -> str:
    return encrypt_under_lmk(LMK, key_type, key)


def kq(mode: str, arqc: str = ARQC, tail: str = "3031", method: str = "1", key: str | None = None) -> str:
    key = key or under(KeyType.MK_AC, IMK_AC)
    return call("KQ", f"{mode}P{method}{key}{len(PAN):02d}{PAN}{PSN}{ATC}{len(DATA) // 2:03d}{DATA}{arqc}{tail}")


def test_kq_verifies_the_published_arqc_and_answers_the_published_arpc() -> None:
    assert kq("1") == "0001KR0021415243527CE78F"
    assert kq("0") == "0001KR00"
    assert kq("2", arqc="0" * 16)[:8] == "0001KR00"  # generate only: the ARQC is not checked


def test_kq_answers_01_and_no_arpc_for_a_wrong_arqc() -> None:
    assert kq("1", arqc="5D016C91005E7CC3") == "0001KR01"


def test_kq_method_2() -> None:
    sk = derive_session_key(derive_icc_master_key(IMK_AC, PAN, PSN), bytes.fromhex(ATC), SessionKeyMethod.PBOC)
    expected = arpc_method_2(sk, bytes.fromhex(ARQC), bytes.fromhex("00820000")).hex().upper()
    assert kq("1", tail="008200000", method="2") == "0001KR00" + expected


def test_kq_refuses_a_key_of_another_type_and_bad_fields() -> None:
    assert kq("1", key=under(KeyType.TPK, ZPK))[:8] == "0001KR10"  # variant LMK: another type fails parity
    assert kq("1", tail="30")[:8] == "0001KR15"  # ARC cut short
    assert call("KQ", "3P1")[:8] == "0001KR15"


def test_g0_translates_the_published_dukpt_pin_block_to_a_zpk() -> None:
    account = DUKPT_PAN[-13:-1]
    answer = call("G0", f"{under(KeyType.BDK, BDK)}{under(KeyType.ZPK, ZPK)}{KSN_1}{DUKPT_BLOCK}01{account}")
    assert answer[:10] == "0001G10004" and answer[-2:] == "01"
    assert tdes_ecb_decrypt(ZPK, bytes.fromhex(answer[10:26])) == build_pin_block("1234", DUKPT_PAN)


def test_g0_refuses_an_unusable_ksn_and_a_wrong_bdk_type() -> None:
    account = DUKPT_PAN[-13:-1]
    zero_counter = "FFFF9876543210E00000"
    answer = call("G0", f"{under(KeyType.BDK, BDK)}{under(KeyType.ZPK, ZPK)}{zero_counter}{DUKPT_BLOCK}01{account}")
    assert answer[:8] == "0001G115"
    answer = call("G0", f"{under(KeyType.ZPK, BDK)}{under(KeyType.ZPK, ZPK)}{KSN_1}{DUKPT_BLOCK}01{account}")
    assert answer[:8] == "0001G110"


@pytest.mark.parametrize(("pin", "code"), [("1234", "00"), ("4321", "01")])
def test_gq_verifies_a_dukpt_pin_against_its_pvv(pin: str, code: str) -> None:
    account = DUKPT_PAN[-13:-1]
    pvv = visa_pvv(PVK, DUKPT_PAN, "1", pin)
    answer = call("GQ", f"{under(KeyType.BDK, BDK)}{under(KeyType.PVK, PVK)}{KSN_1}{DUKPT_BLOCK}01{account}1{pvv}")
    assert answer == "0001GR" + code


AES_KSN_1 = "1234567890123456" + "00000001"
AES_PIN_KEY_1 = bytes.fromhex("AF8CB133A78F8DC2D1359F18527593FB")  # counter 1's PIN key (PROTOCOL.md §8)


def psec_aes_block(pin: str, pan: str) -> str:
    """An ISO 9564 format 4 block by psec, the independent oracle, under the published AES DUKPT PIN key."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bytes(psec.pinblock.encipher_pinblock_iso_4(AES_PIN_KEY_1, pin, pan)).hex().upper()


def test_the_hsm_derives_the_published_aes_dukpt_pin_key() -> None:
    assert aes_derive(AES_BDK, bytes.fromhex(AES_KSN_1), KeyUsage.PIN) == AES_PIN_KEY_1


@pytest.mark.parametrize(("pin", "code"), [("1234", "00"), ("4321", "01")])
def test_gq_verifies_an_aes_dukpt_format_4_pin_block(pin: str, code: str) -> None:
    pvv = visa_pvv(PVK, DUKPT_PAN, "1", pin)
    block = psec_aes_block("1234", DUKPT_PAN)
    fields = f"A{under(KeyType.BDK, AES_BDK)}{under(KeyType.PVK, PVK)}{AES_KSN_1}{block}"
    assert call("GQ", f"{fields}{len(DUKPT_PAN):02d}{DUKPT_PAN}1{pvv}") == "0001GR" + code
    other_pan = DUKPT_PAN[:-2] + "18"  # format 4 binds the whole PAN: another PAN does not decode
    assert call("GQ", f"{fields}{len(other_pan):02d}{other_pan}1{pvv}") == "0001GR01"


def test_g0_translates_an_aes_dukpt_pin_block_to_a_zpk_and_refuses_bad_fields() -> None:
    block = psec_aes_block("1234", DUKPT_PAN)
    head = f"A{under(KeyType.BDK, AES_BDK)}{under(KeyType.ZPK, ZPK)}"
    answer = call("G0", f"{head}{AES_KSN_1}{block}01{len(DUKPT_PAN):02d}{DUKPT_PAN}")
    assert answer[:10] == "0001G10004" and answer[-2:] == "01"
    assert tdes_ecb_decrypt(ZPK, bytes.fromhex(answer[10:26])) == build_pin_block("1234", DUKPT_PAN)
    assert call("G0", f"{head}{AES_KSN_1}{block}0109{DUKPT_PAN[:9]}")[:8] == "0001G115"  # a PAN of 9 digits
    assert call("G0", f"{head}{AES_KSN_1[:-8]}00000000{block}0113{DUKPT_PAN}")[:8] == "0001G115"  # counter 0
    assert call("G0", f"{head}{AES_KSN_1}{block}01{len(DUKPT_PAN):02d}{DUKPT_PAN}7")[:8] == "0001G115"  # extra


def test_the_pin_limits_count_an_aes_gq_by_its_account() -> None:
    block = psec_aes_block("1234", DUKPT_PAN)
    fields = f"A{under(KeyType.BDK, AES_BDK)}{under(KeyType.PVK, PVK)}{AES_KSN_1}{block}13{DUKPT_PAN}10000"
    assert gq_account(fields.encode()) == DUKPT_PAN[-13:-1]
    assert gq_account(fields.encode()[:-10]) is None


TRACK_1 = b"%B5452300551227189^HOGAN/PAUL      ^08043210000000725000000?" + bytes(4)


def test_m2_decrypts_under_the_dukpt_data_key() -> None:
    # The widely reproduced DUKPT data-key example (tests/wire/test_dukpt.py): decrypting gives track 1 back.
    ciphertext = tdes_cbc_encrypt(tdes_derive(BDK, bytes.fromhex("FFFF9876543210E00008"), KeyUsage.DATA), TRACK_1)
    answer = call("M2", f"T{under(KeyType.BDK, BDK)}FFFF9876543210E000081{len(ciphertext):04d}{ciphertext.hex()}")
    assert answer[:8] == "0001M300" and bytes.fromhex(answer[12:]) == TRACK_1


def test_m2_aes_dukpt_and_tdk() -> None:
    ksn = "1234567890123456" + "00000005"
    key = aes_derive(AES_BDK, bytes.fromhex(ksn), KeyUsage.DATA)
    encryptor = Cipher(algorithms.AES(key), modes.CBC(bytes(16))).encryptor()
    ciphertext = encryptor.update(TRACK_1) + encryptor.finalize()
    answer = call("M2", f"A{under(KeyType.BDK, AES_BDK)}{ksn}1{len(ciphertext):04d}{ciphertext.hex()}")
    assert bytes.fromhex(answer[12:]) == TRACK_1
    tdk = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    block = tdes_ecb_encrypt(tdk, bytes.fromhex("6200001000000003"))
    answer = call("M2", f"D{under(KeyType.TDK, tdk)}00008{block.hex()}")
    assert answer == "0001M3000008" + "6200001000000003"


def test_m2_refuses_partial_blocks_and_a_tdk_named_as_a_bdk() -> None:
    tdk = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    assert call("M2", f"D{under(KeyType.TDK, tdk)}00007{'00' * 7}")[:8] == "0001M315"
    assert call("M2", f"T{under(KeyType.TDK, tdk)}{KSN_1}00008{'00' * 8}")[:8] == "0001M310"


def test_a_tdk_is_exported_under_a_tmk_and_a_bdk_never_is() -> None:
    tmk = under(KeyType.TMK, bytes.fromhex("0123456789ABCDEFFEDCBA9876543210"))
    assert call("A0", f"1{KeyType.TDK.code}U{KeyType.TMK.code}{tmk}")[:8] == "0001A100"
    assert call("A0", f"1{KeyType.BDK.code}U{KeyType.TMK.code}{tmk}")[:8] == "0001A129"


@pytest.mark.anyio
async def test_the_client_methods_over_tcp() -> None:
    async with anyio.create_task_group() as tg:
        port = await tg.start(functools.partial(serve, "127.0.0.1", 0, lmk=LMK))
        async with await HsmClient.connect("127.0.0.1", port) as hsm:
            check = ArqcCheck(
                imk_under_lmk=under(KeyType.MK_AC, IMK_AC),
                pan=PAN,
                psn=PSN,
                atc=bytes.fromhex(ATC),
                data=bytes.fromhex(DATA),
                arqc=bytes.fromhex(ARQC),
                arc="01",
            )
            assert await hsm.verify_arqc(check) == bytes.fromhex("21415243527CE78F")
            assert PAN not in repr(check)
            assert await hsm.verify_arqc(dataclasses.replace(check, arqc=bytes(8))) is None
            pvv = visa_pvv(PVK, DUKPT_PAN, "1", "1234")
            verdict = await hsm.verify_dukpt_pin_pvv(
                DukptPinCheck(
                    bdk_under_lmk=under(KeyType.BDK, BDK),
                    pvk_under_lmk=under(KeyType.PVK, PVK),
                    ksn=bytes.fromhex(KSN_1),
                    pin_block=bytes.fromhex(DUKPT_BLOCK),
                    pan=DUKPT_PAN,
                    pvki="1",
                    pvv=pvv,
                )
            )
            assert verdict is PinVerification.OK
            ksn = bytes.fromhex("FFFF9876543210E00008")
            ciphertext = tdes_cbc_encrypt(tdes_derive(BDK, ksn, KeyUsage.DATA), TRACK_1)
            assert await hsm.decrypt_data("T", under(KeyType.BDK, BDK), ciphertext, ksn=ksn, cbc=True) == TRACK_1
        tg.cancel_scope.cancel()
