"""The MPOS DUKPT reader: the published X9.24-1 PIN block, its ciphertexts opened by the real HSM core from
the BDK and KSN alone, and a counter used only once."""

from __future__ import annotations

import dataclasses

import pytest

from acqkit.config import AcqsimConfig
from hsm_sim.keys import DEFAULT_TEST_LMK, KeyType, encrypt_under_lmk
from hsm_sim.processor import HsmProcessor
from terminal.reader import CounterReused, DukptReader, DukptScheme, ReaderExhausted, inject
from terminal.session import TerminalSession
from terminal.state import TerminalState
from wire.codec import decode_pos_body
from wire.constants import SECURITY_CONTROL_DUKPT
from wire.dukpt import SCHEME_TDES, TDES_COUNTER_MASK, DukptTrackData, KeyUsage, aes_derive
from wire.errors import MessageDecodeError
from wire.pinblock4 import decipher
from wire.posframe import PosFrame

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
    with_pin = reader.encrypt(pan=PAN, track2=TRACK, pin="1234")
    assert with_pin.pin_block is not None and len(with_pin.pin_block) == 16  # ISO 9564 format 4
    assert decipher(aes_derive(AES_BDK, with_pin.ksn, KeyUsage.PIN), with_pin.pin_block, PAN) == "1234"


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


def test_the_phone_builds_an_mpos_request_from_ciphertexts_the_hsm_alone_can_open() -> None:
    config = AcqsimConfig.default()
    card = config.card("6200001000000003")
    state = TerminalState(
        terminal_id="10000002",
        merchant_id="898100000000002",
        pik_under_tmk="1A4D672DCA6CB33501E9D8DA9182FC1F",
        mak_under_tmk="01E9D8DA9182FC1F1FD1B02B237AF9AE",
        signed_on=True,
    )
    phone = TerminalSession(state, bytes.fromhex("0123456789ABCDEFFEDCBA9876543210"), app_type="67")
    reader = inject(BDK, bytes.fromhex("FFFF9876543210E00000"))
    frame = phone.dukpt_financial(
        "purchase", reader.encrypt(pan=card.pan, track2=card.track2, pin=card.pin), scheme=SCHEME_TDES, amount=4200
    )
    fields = decode_pos_body(PosFrame.parse(frame).body)
    assert "2" not in fields and "35" not in fields and fields["53"] == SECURITY_CONTROL_DUKPT
    assert card.pan not in frame.hex() and card.pan.encode() not in frame
    data = DukptTrackData.parse(fields["62"])
    bdk = encrypt_under_lmk(DEFAULT_TEST_LMK, KeyType.BDK, BDK)
    clear = hsm("M2", f"T{bdk}{data.ksn.hex()}1{len(data.track_ciphertext):04d}{data.track_ciphertext.hex()}")
    track = bytes.fromhex(clear[12:]).rstrip(b"\0").decode()
    assert track == card.track2
    pvk = encrypt_under_lmk(DEFAULT_TEST_LMK, KeyType.PVK, bytes.fromhex(config.pvk))
    gq = f"{bdk}{pvk}{data.ksn.hex()}{fields['52']}01{card.pan[-13:-1]}{card.pvki}{card.pvv}"
    assert hsm("GQ", gq) == "0001GR00"  # the PIN verifies against the PVV read from the decrypted track
    assert state.pending_reversal is not None and state.pending_reversal.fields["62"] == fields["62"]


AES_KSN_HEX = "FFFF98765400000100000001"


@pytest.mark.parametrize(
    "value",
    [
        "", "ZZ", "03" + "00" * 18, "01" + "00" * 10 + "00" * 7, "01" + "00" * 9,
        "02" + AES_KSN_HEX + "05" + "00" * 21,  # an AES PIN block length other than 0 or 16
        "02" + AES_KSN_HEX + "10" + "00" * 8,  # an AES PIN block cut short
        "02" + AES_KSN_HEX,  # no PIN block length at all
    ],
)  # fmt: skip
def test_a_malformed_field_62_names_the_field(value: str) -> None:
    with pytest.raises(MessageDecodeError) as caught:
        DukptTrackData.parse(value)
    assert caught.value.field == "62"


def test_an_aes_field_62_carries_the_pin_block_or_none() -> None:
    with_pin = DukptTrackData(scheme=2, ksn=bytes.fromhex(AES_KSN_HEX), track_ciphertext=bytes(32), pin_block=bytes(16))
    assert DukptTrackData.parse(with_pin.encode()) == with_pin
    without = dataclasses.replace(with_pin, pin_block=None)
    assert DukptTrackData.parse(without.encode()) == without and without.encode()[26:28] == "00"
    with pytest.raises(MessageDecodeError):  # a TDES reader's PIN block goes in 52, never in 62
        DukptTrackData(scheme=SCHEME_TDES, ksn=bytes(10), track_ciphertext=bytes(8), pin_block=bytes(16))
