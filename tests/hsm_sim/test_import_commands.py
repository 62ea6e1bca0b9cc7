"""A6 (import a key under a ZMK): a known key → the expected KCV and a usable key under the LMK; wrong ZMK → 10."""

from __future__ import annotations

from hsm_sim.keys import DEFAULT_TEST_LMK, KeyType, decrypt_under_lmk, encrypt_under_lmk
from hsm_sim.processor import HsmProcessor
from wire.paycrypto import tdes_ecb_encrypt

LMK = DEFAULT_TEST_LMK
# TEST keys only.
ZMK = bytes.fromhex("89B07A34A1B3F47F4A5B6879E9D9C7B6")
TMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
#: KCV of the TMK above: TDES-ECB of eight zero bytes (the published 0123…3210 vector starts 08D7B4).
TMK_KCV = "08D7B4FB629D0885"


def call(command: str, fields: str) -> str:
    return HsmProcessor(LMK).handle(b"0001" + command.encode() + fields.encode("ascii")).decode("ascii")


def test_a6_imports_a_known_key_with_the_expected_kcv() -> None:
    zmk_under_lmk = encrypt_under_lmk(LMK, KeyType.ZMK, ZMK)
    under_zmk = tdes_ecb_encrypt(ZMK, TMK).hex().upper()
    answer = call("A6", f"{KeyType.TMK.code}{zmk_under_lmk}X{under_zmk}U")
    assert answer[:8] == "0001A700"
    under_lmk, kcv = answer[8:41], answer[41:]
    assert kcv == TMK_KCV
    assert decrypt_under_lmk(LMK, KeyType.TMK, under_lmk) == TMK
    assert TMK.hex().upper() not in answer


def test_a6_with_the_wrong_zmk_answers_source_parity() -> None:
    other_zmk = encrypt_under_lmk(LMK, KeyType.ZMK, TMK)
    under_zmk = tdes_ecb_encrypt(ZMK, TMK).hex().upper()
    assert call("A6", f"{KeyType.TMK.code}{other_zmk}X{under_zmk}U")[:8] == "0001A710"


def test_a6_refuses_to_import_a_zmk() -> None:
    zmk_under_lmk = encrypt_under_lmk(LMK, KeyType.ZMK, ZMK)
    under_zmk = tdes_ecb_encrypt(ZMK, TMK).hex().upper()
    assert call("A6", f"{KeyType.ZMK.code}{zmk_under_lmk}X{under_zmk}U")[:8] == "0001A715"
