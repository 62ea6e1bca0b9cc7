"""DUKPT (PROTOCOL.md §8): the published TDES (X9.24-1) and AES (X9.24-3) examples, the counter rules, and
the TDK track encryption."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wire.codec import decode_pos_body, encode_pos_body
from wire.constants import SECURITY_CONTROL_FORMAT0_TDES_TDK
from wire.dukpt import (
    DukptError,
    KeyUsage,
    aes_derive,
    aes_initial_key,
    aes_split_ksn,
    tdes_counter_usable,
    tdes_derive,
    tdes_ipek,
    tdes_transaction_key,
)
from wire.paycrypto import build_pin_block, tdes_cbc_encrypt, tdes_ecb_decrypt, tdes_ecb_encrypt
from wire.trackcrypt import EncryptedTrack, decrypt_track, encrypt_track, encrypt_track_field

TDES_BDK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
TDES_KSN_1 = bytes.fromhex("FFFF9876543210E00001")
AES_BDK = bytes.fromhex("FEDCBA9876543210F1F1F1F1F1F1F1F1")
AES_KEY_ID = bytes.fromhex("1234567890123456")


def test_the_published_tdes_example() -> None:
    assert tdes_ipek(TDES_BDK, bytes.fromhex("FFFF9876543210E00000")).hex().upper() == (
        "6AC292FAA1315B4D858AB3A3D7D5933A"
    )
    pin_key = tdes_derive(TDES_BDK, TDES_KSN_1, KeyUsage.PIN)
    assert pin_key.hex().upper() == "042666B49184CF5C68DE9628D0397B36"
    clear = build_pin_block("1234", "4012345678909")
    assert clear.hex().upper() == "041274EDCBA9876F"
    assert tdes_ecb_encrypt(pin_key, clear).hex().upper() == "1B9C1845EB993A7A"


# A widely reproduced DUKPT test (independent implementations in several languages agree on it): the same
# BDK, KSN ...E00008, track 1 "%B5452300551227189^HOGAN/PAUL      ^08043210000000725000000?" padded with four
# zero bytes, TDES-CBC with a zero IV, under the PIN key and under the data key.
TRACK_1 = b"%B5452300551227189^HOGAN/PAUL      ^08043210000000725000000?" + bytes(4)
KSN_8 = bytes.fromhex("FFFF9876543210E00008")


def test_the_track_1_example_under_the_pin_and_data_keys() -> None:
    under_pin = tdes_cbc_encrypt(tdes_derive(TDES_BDK, KSN_8, KeyUsage.PIN), TRACK_1).hex().upper()
    assert under_pin.startswith("C25C1D1197D31CAA87285D59A892047426D9182EC11353C051ADD6D0F072A6CB")
    under_data = tdes_cbc_encrypt(tdes_derive(TDES_BDK, KSN_8, KeyUsage.DATA), TRACK_1).hex().upper()
    assert under_data.startswith("411D405D7DEDB9D84797F045559721E8C06A5565FFB3B4050509277E5F80072E")


def test_the_published_aes_example() -> None:
    assert aes_initial_key(AES_BDK, AES_KEY_ID).hex().upper() == "1273671EA26AC29AFA4D1084127652A1"
    ksn = AES_KEY_ID + (1).to_bytes(4, "big")
    assert aes_derive(AES_BDK, ksn, KeyUsage.PIN).hex().upper() == "AF8CB133A78F8DC2D1359F18527593FB"
    assert aes_split_ksn(ksn) == (AES_KEY_ID, 1)


def test_each_counter_gives_its_own_key_and_the_ipek_does_not_depend_on_the_counter() -> None:
    keys = {tdes_derive(TDES_BDK, TDES_KSN_1[:-1] + bytes([n]), KeyUsage.PIN) for n in range(1, 9)}
    assert len(keys) == 8
    assert tdes_ipek(TDES_BDK, TDES_KSN_1) == tdes_ipek(TDES_BDK, TDES_KSN_1[:-1] + b"\x07")


@pytest.mark.parametrize("counter", [0, 0b11111111111, 1 << 21])
def test_unusable_tdes_counters_are_refused(counter: int) -> None:
    assert not tdes_counter_usable(counter)
    ksn = (int.from_bytes(TDES_KSN_1) & ~0x1FFFFF | counter & 0x1FFFFF).to_bytes(10)
    if counter & 0x1FFFFF:
        with pytest.raises(DukptError):
            tdes_transaction_key(tdes_ipek(TDES_BDK, ksn), ksn)


@pytest.mark.parametrize("ksn", [bytes(9), bytes(11)])
def test_a_ksn_of_the_wrong_length_is_refused(ksn: bytes) -> None:
    with pytest.raises(DukptError):
        tdes_derive(TDES_BDK, ksn, KeyUsage.PIN)
    with pytest.raises(DukptError):
        aes_derive(AES_BDK, ksn, KeyUsage.PIN)


def test_aes_counter_zero_and_too_many_bits_are_refused() -> None:
    for counter in (0, 0x0001FFFF):
        with pytest.raises(DukptError):
            aes_derive(AES_BDK, AES_KEY_ID + counter.to_bytes(4, "big"), KeyUsage.PIN)


TDK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")


def test_track_encryption_keeps_head_and_tail_in_place() -> None:
    track = "6200001000000003=30122011234500000"  # 34 digits: even, the block ends two digits before the end
    encrypted = encrypt_track(TDK, track)
    digits = track.replace("=", "D")
    assert len(encrypted) == len(digits)
    assert encrypted[:16] == digits[:16] and encrypted[-2:] == digits[-2:]
    assert encrypted[16:32] == tdes_ecb_encrypt(TDK, bytes.fromhex(digits[16:32])).hex().upper()
    assert decrypt_track(TDK, encrypted) == track
    odd = track[:-1]  # 33 digits: the block ends one digit before the end
    assert encrypt_track(TDK, odd)[-1] == odd[-1]
    assert (
        tdes_ecb_decrypt(TDK, bytes.fromhex(encrypt_track(TDK, odd)[16:32])).hex().upper()
        == odd.replace("=", "D")[16:32]
    )


@given(st.text("0123456789", min_size=13, max_size=19), st.text("0123456789", min_size=7, max_size=17))
def test_any_track_round_trips(pan: str, tail: str) -> None:
    track = pan + "=" + tail
    assert decrypt_track(TDK, encrypt_track(TDK, track)) == track


@given(st.text("0123456789", min_size=13, max_size=19), st.text("0123456789", min_size=7, max_size=17))
def test_an_encrypted_track_field_crosses_the_codec_and_opens_block_by_block(pan: str, tail: str) -> None:
    """What the terminal puts in 35 survives the POS codec; the front-end's split sends only the 8-byte block to
    be decrypted (the HSM's job, played here by the TDK) and gets the clear track back."""
    track = pan + "=" + tail
    field = encrypt_track_field(TDK, track)
    message = {"t": "0200", "35": field, "53": SECURITY_CONTROL_FORMAT0_TDES_TDK}
    assert decode_pos_body(encode_pos_body(message))["35"] == field
    encrypted = EncryptedTrack.split(field)
    assert encrypted.with_clear_block(tdes_ecb_decrypt(TDK, encrypted.block)) == track
    wrong_key = bytes(16)
    assert encrypted.with_clear_block(tdes_ecb_decrypt(wrong_key, encrypted.block)) != track
