"""The MPOS DUKPT reader: the published X9.24-1 PIN block, its ciphertexts opened by the real HSM core from
the BDK and KSN alone, and a counter used only once."""

from __future__ import annotations

import pytest

from hsm_sim.keys import DEFAULT_TEST_LMK, KeyType, encrypt_under_lmk
from hsm_sim.processor import HsmProcessor
from terminal.reader import CounterReused, DukptReader, DukptScheme, ReaderError, ReaderExhausted, inject
from wire.dukpt import TDES_COUNTER_MASK

BDK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
AES_BDK = bytes.fromhex("FEDCBA9876543210F1F1F1F1F1F1F1F1")
PAN = "4012345678909"
TRACK = "4012345678909=30122011234500000"


def hsm(command: str, fields: str) -> str:
    return HsmProcessor(DEFAULT_TEST_LMK).handle(b"0001" + command.encode() + fields.encode()).decode()


def test_the_first_transaction_gives_the_published_pin_block_and_the_hsm_opens_the_track() -> None:
    reader = inject(BDK, bytes.fromhex("FFFF9876543210E00000"))
    out = reader.encrypt(pan=PAN, track2=TRACK, pin="1234")
    assert out.ksn.hex().upper() == "FFFF9876543210E00001" and reader.counter == 1
    assert out.pin_block is not None and out.pin_block.hex().upper() == "1B9C1845EB993A7A"
    bdk = encrypt_under_lmk(DEFAULT_TEST_LMK, KeyType.BDK, BDK)
    answer = hsm("M2", f"T{bdk}{out.ksn.hex()}1{len(out.track_data):04d}{out.track_data.hex()}")
    assert answer[:8] == "0001M300" and bytes.fromhex(answer[12:]).rstrip(b"\0").decode() == TRACK
    assert "1B9C" not in repr(reader) and "6AC2" not in repr(reader)


def test_an_aes_reader_encrypts_the_track_the_hsm_opens() -> None:
    reader = inject(AES_BDK, bytes.fromhex("1234567890123456"), DukptScheme.AES)
    out = reader.encrypt(pan=PAN, track2=TRACK, pin=None)
    assert out.ksn.hex().upper() == "123456789012345600000001"
    bdk = encrypt_under_lmk(DEFAULT_TEST_LMK, KeyType.BDK, AES_BDK)
    answer = hsm("M2", f"A{bdk}{out.ksn.hex()}1{len(out.track_data):04d}{out.track_data.hex()}")
    assert bytes.fromhex(answer[12:]).rstrip(b"\0").decode() == TRACK
    with pytest.raises(ReaderError):
        reader.encrypt(pan=PAN, track2=TRACK, pin="1234")


def test_a_counter_is_never_used_twice() -> None:
    reader = inject(BDK, bytes.fromhex("FFFF9876543210E00000"))
    reader.encrypt(pan=PAN, track2=TRACK, pin="1234")
    with pytest.raises(CounterReused):
        reader.encrypt(pan=PAN, track2=TRACK, pin="1234", counter=1)
    assert reader.encrypt(pan=PAN, track2=TRACK, pin=None).ksn.hex().upper().endswith("E00002")


def test_counters_with_more_than_ten_bits_are_skipped_and_the_end_is_refused() -> None:
    reader = inject(BDK, bytes.fromhex("FFFF9876543210E00000"))
    reader.counter = 0b11111111110  # the next value, 0b11111111111, has 11 bits set
    assert reader.next_counter() == 0b100000000000
    end = DukptReader(
        scheme=DukptScheme.TDES, initial_key=bytes(16), initial_ksn=bytes(10), counter=TDES_COUNTER_MASK - 1
    )
    with pytest.raises(ReaderExhausted):
        end.next_counter()
