"""ISO 9564 format 4 (AES) PIN blocks, with psec 1.3 as an independent oracle."""

from __future__ import annotations

import warnings

import psec.pinblock
import pytest
from hypothesis import given
from hypothesis import strategies as st

from wire.paycrypto import PinBlockError
from wire.pinblock4 import decipher, encipher

KEY = bytes.fromhex("AF8CB133A78F8DC2D1359F18527593FB")  # the AES DUKPT PIN key of PROTOCOL.md §8


def psec_decipher(key: bytes, block: bytes, pan: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return str(psec.pinblock.decipher_pinblock_iso_4(key, block, pan))


@given(
    key=st.binary(min_size=16, max_size=16),
    pin=st.text("0123456789", min_size=4, max_size=12),
    pan=st.text("0123456789", min_size=1, max_size=19),
)
def test_our_blocks_decode_with_psec_and_back(key: bytes, pin: str, pan: str) -> None:
    block = encipher(key, pin, pan)
    assert psec_decipher(key, block, pan) == pin
    assert decipher(key, block, pan) == pin


def test_a_wrong_pan_or_key_does_not_decode() -> None:
    block = encipher(KEY, "1234", "4012345678909")
    for key, pan in ((KEY, "4012345678901"), (bytes(16), "4012345678909")):
        with pytest.raises(PinBlockError):
            decipher(key, block, pan)
    with pytest.raises(PinBlockError):
        encipher(KEY, "12", "4012345678909")
