"""The HSM processor, command by command, with published vectors and every error code."""

from __future__ import annotations

import hashlib
import hmac
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hsm_sim.keys import DEFAULT_TEST_LMK, KeyType, decrypt_under_lmk, encrypt_under_lmk
from hsm_sim.processor import HsmProcessor
from wire.paycrypto import build_pin_block, mac_cup_ecb, tdes_ecb_decrypt, tdes_ecb_encrypt, visa_pvv

LMK = DEFAULT_TEST_LMK
TMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
PIK = bytes.fromhex("0123456789ABCDEF1C587F1C13924FEF")
MAK = bytes.fromhex("1C587F1C13924FEFFEDCBA9876543210")
PVK = bytes.fromhex("7A3D5E1F2A4C6B8C9E0E1A2A3D4C5E6E")
ZPK = bytes.fromhex("89B07A34A1B3F47F4A5B6879E9D9C7B6")


def call(command: str, fields: str | bytes = b"") -> str:
    data = fields.encode("ascii") if isinstance(fields, str) else fields
    return HsmProcessor(LMK).handle(b"0001" + command.encode() + data).decode("ascii")


def under(key_type: KeyType, key: bytes) -> str:
    return encrypt_under_lmk(LMK, key_type, key)


def test_nc_reports_lmk_check_value() -> None:
    answer = call("NC")
    assert answer.startswith("0001ND00")
    assert answer[8:24] == LMK.check_value


def test_a0_mode1_exports_under_tmk_and_keeps_lmk_form() -> None:
    answer = call("A0", "1" + KeyType.TPK.code + "U" + KeyType.TMK.code + under(KeyType.TMK, TMK))
    assert answer[:8] == "0001A100"
    under_lmk, rest = answer[8:41], answer[41:]
    assert rest[0] == "X"
    exported = bytes.fromhex(rest[1:33])
    clear = decrypt_under_lmk(LMK, KeyType.TPK, under_lmk)
    assert tdes_ecb_decrypt(TMK, exported) == clear
    assert rest[33:] == tdes_ecb_encrypt(clear, bytes(8)).hex().upper()
    assert clear.hex().upper() not in answer


def test_sign_on_vector_via_bu() -> None:
    answer = call("BU", KeyType.TPK.code + under(KeyType.TPK, PIK))
    assert answer[8:16] == "164D70B9"
    answer = call("BU", KeyType.TAK.code + under(KeyType.TAK, MAK))
    assert answer[8:16] == "76FE1391"


def test_wrong_key_type_fails_parity() -> None:
    # A TAK presented where a TPK is expected decrypts under the wrong variant: error 10.
    answer = call("BU", KeyType.TPK.code + under(KeyType.TAK, MAK))
    assert answer == "0001BV10"


def _m6(algorithm: str, data: bytes) -> str:
    head = f"001{algorithm}1{KeyType.TAK.code}{under(KeyType.TAK, MAK)}{len(data):04X}"
    return call("M6", head.encode() + data)


def test_m6_cup_mac_matches_primitive_and_m8_verifies() -> None:
    data = b"\x02\x00" + bytes(range(40))
    answer = _m6("C", data)
    assert answer[:8] == "0001M700"
    assert bytes.fromhex(answer[8:]) == mac_cup_ecb(MAK, data)
    head = f"001C1{KeyType.TAK.code}{under(KeyType.TAK, MAK)}{len(data):04X}"
    assert call("M8", head.encode() + data + answer[8:].encode()) == "0001M900"
    bad = bytes([data[0] ^ 1]) + data[1:]
    assert call("M8", head.encode() + bad + answer[8:].encode()) == "0001M901"


def test_m6_m8_hmac_sha256_64_under_an_hmk_only() -> None:
    data = b"MT004MSLSMI015100000000000001"
    hmk_head = f"001H1{KeyType.HMK.code}{under(KeyType.HMK, MAK)}{len(data):04X}"
    answer = call("M6", hmk_head.encode() + data)
    assert answer[8:] == hmac.new(MAK, data, hashlib.sha256).digest()[:8].hex().upper()  # an independent oracle
    assert call("M8", hmk_head.encode() + data + answer[8:].encode()) == "0001M900"
    assert call("M8", hmk_head.encode() + data[:-1] + b"2" + answer[8:].encode()) == "0001M901"
    # Key separation: H with a DES MAC key, or an HMK with a DES algorithm, is refused (28).
    tak_h = f"001H1{KeyType.TAK.code}{under(KeyType.TAK, MAK)}{len(data):04X}"
    hmk_des = f"00131{KeyType.HMK.code}{under(KeyType.HMK, MAK)}{len(data):04X}"
    assert call("M6", tak_h.encode() + data) == "0001M728"
    assert call("M6", hmk_des.encode() + data) == "0001M728"


def test_x919_vector_through_m6() -> None:
    # ANSI X9.9 (FIPS 113) vector with key K1 = K2 = 0123456789ABCDEF as a TAK.
    key = bytes.fromhex("0123456789ABCDEF0123456789ABCDEF")
    data = b"7654321 Now is the time for "
    head = "0013" + f"1{KeyType.TAK.code}{under(KeyType.TAK, key)}{len(data):04X}"
    answer = call("M6", head.encode() + data)
    assert answer[8:16] == "F1D30F68"


def test_dc_verifies_pvv_and_rejects_wrong_pin() -> None:
    pan = "6200001000000003"
    pvv = visa_pvv(PVK, pan, "1", "123456")
    assert pvv == "6308"
    for pin, expected in (("123456", "00"), ("999999", "01")):
        block = tdes_ecb_encrypt(PIK, build_pin_block(pin, pan)).hex().upper()
        fields = under(KeyType.TPK, PIK) + under(KeyType.PVK, PVK) + block + "01" + pan[-13:-1] + "1" + pvv
        assert call("DC", fields) == f"0001DD{expected}"


def test_dc_garbage_pin_block_answers_01_like_a_wrong_pin_and_audits_20() -> None:
    block = tdes_ecb_encrypt(PIK, bytes.fromhex("FFFFFFFFFFFFFFFF")).hex().upper()
    fields = under(KeyType.TPK, PIK) + under(KeyType.PVK, PVK) + block + "01" + "000100000000" + "1" + "6308"
    assert call("DC", fields) == "0001DD01"
    _, outcome = HsmProcessor(LMK).process(b"0001DC" + fields.encode("ascii"))
    assert (outcome.answered, outcome.true_code) == ("01", "20")


def test_ca_translates_format0_to_format3() -> None:
    pan = "5544332211009966"
    block = tdes_ecb_encrypt(PIK, build_pin_block("1234", pan)).hex().upper()
    fields = under(KeyType.TPK, PIK) + under(KeyType.ZPK, ZPK) + "12" + block + "01" + "47" + pan[-13:-1]
    answer = call("CA", fields)
    assert answer[:8] == "0001CB00" and answer[8:10] == "04" and answer[-2:] == "47"
    from wire.paycrypto import PinBlockFormat, extract_pin

    assert extract_pin(tdes_ecb_decrypt(ZPK, bytes.fromhex(answer[10:26])), pan, PinBlockFormat.ISO3) == "1234"


def test_ca_unknown_format_is_error_23() -> None:
    block = "0" * 16
    fields = under(KeyType.TPK, PIK) + under(KeyType.ZPK, ZPK) + "12" + block + "99" + "01" + "000000000000"
    assert call("CA", fields) == "0001CB23"


@pytest.mark.parametrize(
    ("command", "fields", "expected"),
    [
        ("XY", "", "0001XZ68"),
        ("BU", "002", "0001BV15"),
        ("BU", "999U" + "0" * 32, "0001BV04"),
        ("NC", "trailing", "0001ND15"),
        ("A0", "2002U", "0001A115"),
    ],
)
def test_malformed_and_unknown(command: str, fields: str, expected: str) -> None:
    assert call(command, fields) == expected


def test_unreadable_request_answers_15() -> None:
    assert HsmProcessor(LMK).handle(b"\xff\xfe") == b"0000ZZ15"


@given(st.binary(max_size=200))
def test_any_bytes_get_an_answer_never_an_exception(payload: bytes) -> None:
    answer = HsmProcessor(LMK).handle(payload)
    assert len(answer) >= 8


@given(data=st.binary(min_size=1, max_size=300), flip=st.integers(min_value=0))
def test_generate_then_verify_and_any_flipped_bit_fails(data: bytes, flip: int) -> None:
    for algorithm in ("1", "3", "C"):
        mac = _m6(algorithm, data)[8:]
        head = f"001{algorithm}1{KeyType.TAK.code}{under(KeyType.TAK, MAK)}{len(data):04X}"
        assert call("M8", head.encode() + data + mac.encode()) == "0001M900"
        bit = flip % (len(data) * 8)
        tampered = bytearray(data)
        tampered[bit // 8] ^= 1 << (bit % 8)
        if algorithm != "C" or bytes(tampered) != data:
            assert call("M8", head.encode() + bytes(tampered) + mac.encode()) == "0001M901"


def test_no_clear_key_in_answers_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secrets_hex = [k.hex().upper() for k in (TMK, PIK, MAK, PVK)]
    answers = [
        call("A0", "1" + KeyType.TAK.code + "U" + KeyType.TMK.code + under(KeyType.TMK, TMK)),
        call("BU", KeyType.TPK.code + under(KeyType.TAK, MAK)),
        call("DC", under(KeyType.TPK, PIK) + under(KeyType.PVK, PVK) + "0" * 16 + "01" + "0" * 12 + "1" + "0000"),
    ]
    text = " ".join(answers) + caplog.text
    for secret in secrets_hex:
        assert secret not in text
