"""Payment crypto: published vectors, and every primitive checked against psec 1.3 as an independent oracle.

psec calls cryptography's TripleDES from its deprecated location, so its calls run with that warning
silenced locally (pytest turns warnings into errors everywhere else).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TypeVar

import psec.des
import psec.mac
import psec.pin
import psec.pinblock
import pytest
from hypothesis import given
from hypothesis import strategies as st

from wire.paycrypto import (
    CryptoInputError,
    EcbKey,
    PinBlockError,
    PinBlockFormat,
    build_pin_block,
    decrypt_pin,
    encrypt_key_under,
    encrypt_pin_block,
    extract_pin,
    generate_key,
    has_odd_parity,
    key_check_value,
    mac_cup_ecb,
    mac_iso9797_alg1,
    mac_x919,
    tdes_cbc_decrypt,
    tdes_cbc_encrypt,
    tdes_ecb_decrypt,
    tdes_ecb_encrypt,
    visa_pvv,
    with_odd_parity,
)

T = TypeVar("T")


def oracle(call: Callable[[], T]) -> T:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return call()


PIK = bytes.fromhex("0123456789ABCDEF1C587F1C13924FEF")
TMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
MAK = bytes.fromhex("1C587F1C13924FEFFEDCBA9876543210")


def test_protocol_vectors() -> None:
    # PROTOCOL.md §6: ISO 9564 format 0 and the sign-on keys.
    assert build_pin_block("1234", "5544332211009966").hex().upper() == "041277CDDEEFF669"
    assert encrypt_pin_block(PIK, "1234", "5544332211009966").hex().upper() == "AB7374D801F4A390"
    assert encrypt_key_under(TMK, PIK).hex().upper() == "1A4D672DCA6CB33501E9D8DA9182FC1F"
    assert key_check_value(PIK, 4).hex().upper() == "164D70B9"
    assert encrypt_key_under(TMK, MAK).hex().upper() == "01E9D8DA9182FC1F1FD1B02B237AF9AE"
    assert key_check_value(MAK, 4).hex().upper() == "76FE1391"


def test_x99_fips113_vector() -> None:
    # ANSI X9.9 / FIPS 113: key 0123456789ABCDEF, "7654321 Now is the time for " → F1D30F68…
    assert mac_x919(bytes.fromhex("0123456789ABCDEF"), b"7654321 Now is the time for ").hex().upper()[:8] == "F1D30F68"


def test_pin_errors_never_show_digits() -> None:
    # A format 0 block whose fill is not all F once the PAN is XORed back out.
    block = tdes_ecb_encrypt(PIK, bytes.fromhex("0412345FFFFFFFFF"))
    with pytest.raises(PinBlockError) as info:
        decrypt_pin(PIK, block, "5544332211009966")
    assert "1234" not in str(info.value) and "2345" not in str(info.value)
    with pytest.raises(PinBlockError) as too_short:
        build_pin_block("987", "5544332211009966")
    assert "987" not in str(too_short.value)


keys = st.binary(min_size=16, max_size=16).map(with_odd_parity)
pans = st.text("0123456789", min_size=13, max_size=19)
pins = st.text("0123456789", min_size=4, max_size=12)


@given(pin=pins, pan=pans)
def test_pin_blocks_agree_with_psec(pin: str, pan: str) -> None:
    ours = build_pin_block(pin, pan, PinBlockFormat.ISO0)
    assert ours == oracle(lambda: psec.pinblock.encode_pinblock_iso_0(pin, pan))
    assert oracle(lambda: psec.pinblock.decode_pinblock_iso_0(ours, pan)) == pin
    iso3 = build_pin_block(pin, pan, PinBlockFormat.ISO3)
    assert oracle(lambda: psec.pinblock.decode_pinblock_iso_3(iso3, pan)) == pin
    assert extract_pin(iso3, pan, PinBlockFormat.ISO3) == pin


@given(key=keys, data=st.binary(min_size=1, max_size=200))
def test_macs_agree_with_psec(key: bytes, data: bytes) -> None:
    assert mac_iso9797_alg1(key, data) == oracle(lambda: psec.mac.generate_cbc_mac(key, data, 1))
    assert mac_x919(key, data) == oracle(lambda: psec.mac.generate_retail_mac(key[:8], key[8:], data, 1))
    assert key_check_value(key, 4) == oracle(lambda: psec.des.generate_kcv(key, 4))
    assert tdes_ecb_encrypt(key, data.ljust(8, b"\0")[:8]) == oracle(
        lambda: psec.des.encrypt_tdes_ecb(key, data.ljust(8, b"\0")[:8])
    )


@given(key=keys, data=st.binary(min_size=1, max_size=200))
def test_cup_mac_follows_protocol_with_psec_primitives(key: bytes, data: bytes) -> None:
    padded = data + bytes(-len(data) % 8)
    folded = bytes(8)
    for i in range(0, len(padded), 8):
        folded = bytes(a ^ b for a, b in zip(folded, padded[i : i + 8], strict=True))
    text = folded.hex().upper().encode()
    first = oracle(lambda: psec.des.encrypt_tdes_ecb(key, text[:8]))
    second = oracle(lambda: psec.des.encrypt_tdes_ecb(key, bytes(a ^ b for a, b in zip(first, text[8:], strict=True))))
    assert mac_cup_ecb(key, data) == second.hex().upper().encode()[:8]


@given(key=keys, pan=pans, pin=pins, pvki=st.sampled_from("0123456789"))
def test_visa_pvv_agrees_with_psec(key: bytes, pan: str, pin: str, pvki: str) -> None:
    assert visa_pvv(key, pan, pvki, pin) == oracle(lambda: psec.pin.generate_visa_pvv(key, pvki, pin[:4], pan))


# Published vectors from psec's own test suite (github.com/knovichikhin/psec, tests/test_pin.py
# test_generate_visa_pvv and tests/test_mac.py test_generate_cbc_mac / test_generate_retail_mac).
PSEC_PVK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")


@pytest.mark.parametrize(
    ("pvki", "pin", "pan", "pvv"),
    [
        ("1", "4524", "1122334455667788", "8523"),
        ("2", "1912", "1122334455667788", "3244"),
        ("1", "0570", "1122334455667718", "3144"),
        ("1", "8299", "1122334455667708", "4422"),
    ],
)
def test_published_visa_pvv_vectors(pvki: str, pin: str, pan: str, pvv: str) -> None:
    assert visa_pvv(PSEC_PVK, pan, pvki, pin) == pvv


def test_published_cbc_mac_and_retail_mac_vectors() -> None:
    # ISO 9797-1 alg 1, padding 1, TDES key AAAAAAAAAAAAAAAA BBBBBBBBBBBBBBBB, "hello world".
    assert mac_iso9797_alg1(bytes.fromhex("AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBB"), b"hello world").hex().upper() == (
        "68D9038F23360DF3"
    )
    # X9.19 retail MAC, K1 = ASCII "AAAAAAAA" (0x41…), K2 = ASCII "BBBBBBBB", padding 1.
    assert mac_x919(b"A" * 8 + b"B" * 8, b"hello world").hex().upper() == "3DDE5C5511661CBF"


def test_single_des_key_is_k1k1k1_and_x919_with_equal_halves_is_x99() -> None:
    single = bytes.fromhex("0123456789ABCDEF")
    assert tdes_ecb_encrypt(single, bytes(8)) == tdes_ecb_encrypt(single * 2, bytes(8))
    data = b"7654321 Now is the time for "
    assert mac_x919(single, data) == mac_x919(single * 2, data) == mac_iso9797_alg1(single, data)


def test_parity_helpers() -> None:
    assert has_odd_parity(PIK) and not has_odd_parity(bytes(16))
    assert has_odd_parity(with_odd_parity(bytes(range(16))))
    assert len(generate_key(16)) == 16 and has_odd_parity(generate_key(16))


@given(key=keys, data=st.binary(min_size=8, max_size=64).map(lambda b: b[: len(b) // 8 * 8]))
def test_tdes_round_trips_and_cbc_agrees_with_psec(key: bytes, data: bytes) -> None:
    assert tdes_ecb_decrypt(key, tdes_ecb_encrypt(key, data)) == data
    assert tdes_cbc_decrypt(key, tdes_cbc_encrypt(key, data)) == data
    assert tdes_cbc_encrypt(key, data) == oracle(lambda: psec.des.encrypt_tdes_cbc(key, bytes(8), data))


@given(pin=pins, pan=pans)
def test_format1_round_trip_and_format3_built_by_psec_decodes(pin: str, pan: str) -> None:
    assert extract_pin(build_pin_block(pin, None, PinBlockFormat.ISO1), None, PinBlockFormat.ISO1) == pin
    theirs = oracle(lambda: psec.pinblock.encode_pinblock_iso_3(pin, pan))
    assert extract_pin(theirs, pan, PinBlockFormat.ISO3) == pin


@given(block=st.binary(min_size=8, max_size=8), pan=pans)
def test_pin_block_errors_never_carry_digits_of_the_block(block: bytes, pan: str) -> None:
    for fmt in PinBlockFormat:
        try:
            extract_pin(block, pan, fmt)
        except PinBlockError as exc:
            assert not any(c.isdigit() and c != fmt.value for c in str(exc).replace("4 to 12", ""))


def test_visa_pvv_input_errors_name_no_values() -> None:
    with pytest.raises(CryptoInputError) as info:
        visa_pvv(PSEC_PVK, "1122334455667788", "X", "1234")
    assert "X" not in str(info.value).replace("PVKI", "")


@given(st.binary(min_size=0, max_size=200), st.sampled_from(["1234", "123456", "999999999999"]))
def test_a_reused_ecb_key_gives_what_the_key_gives(data: bytes, pin: str) -> None:
    """A session's cached :class:`EcbKey` (contexts reused across messages) MACs and encrypts PIN blocks
    exactly as the plain key does, message after message."""
    mak, pik = EcbKey(MAK), EcbKey(PIK)
    for _ in range(3):  # reuse is the point
        assert mac_cup_ecb(mak, data) == mac_cup_ecb(MAK, data)
        assert encrypt_pin_block(pik, pin, "5544332211009966") == encrypt_pin_block(PIK, pin, "5544332211009966")
    assert encrypt_pin_block(EcbKey(PIK), "1234", "5544332211009966").hex().upper() == "AB7374D801F4A390"
    assert pik.decrypt(pik.encrypt(bytes(16))) == bytes(16)
