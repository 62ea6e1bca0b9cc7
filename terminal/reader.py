"""The MPOS card reader, sans-IO: it reads the card, takes the PIN, and hands the phone only ciphertexts.

A reader is loaded once, at a key injection facility, with its initial key and initial KSN
(:func:`inject`: TDES IPEK per ANSI X9.24-1, or the AES-128 initial key per X9.24-3, derived from the BDK
there — the reader never holds the BDK). For each transaction it moves to its next usable counter, derives
that counter's keys, and returns :class:`ReaderOutput`: the KSN, the PIN block (ISO 9564 format 0) under the
PIN key, and track 2 under the data key (CBC, zero IV, zero-padded ASCII). The phone app that builds the ISO
message never sees a clear PIN or track, nor any key. The HSM derives the same keys from the BDK and the KSN.

A counter is used once: :meth:`DukptReader.encrypt` refuses a counter at or below the last one used
(:class:`CounterReused`, e.g. a reader restored from an old state) and a reader past its last usable counter
(:class:`ReaderExhausted`). TDES readers skip counters with more than 10 bits set, as X9.24-1 requires.
An AES reader's PIN block is ISO 9564 format 4 (16 bytes, :mod:`wire.pinblock4`) under its AES PIN key; the
HSM's G0 / GQ verify it in their AES layout (with the whole PAN); the phone sends it in 62, as 52 holds 8 bytes.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Final

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from wire.dukpt import (
    AES_COUNTER_BITS,
    AES_KEY_ID_LEN,
    TDES_COUNTER_MASK,
    KeyUsage,
    aes_counter_usable,
    aes_initial_key,
    aes_intermediate_key,
    aes_usage_key,
    tdes_counter_usable,
    tdes_initial_ksn,
    tdes_ipek,
    tdes_transaction_key,
    tdes_usage_key,
)
from wire.errors import AcqsimError
from wire.paycrypto import BLOCK, encrypt_pin_block, tdes_cbc_encrypt
from wire.pinblock4 import encipher as format4_encipher

AES_BLOCK: Final = 16


class DukptScheme(enum.StrEnum):
    TDES = "tdes"  # ANSI X9.24-1: 10-byte KSN, 21-bit counter
    AES = "aes"  # ANSI X9.24-3, AES-128: 12-byte KSN, 32-bit counter


class ReaderError(AcqsimError):
    """The reader refuses: its counter is used up or would be used again, or it cannot do what was asked."""


class ReaderExhausted(ReaderError):
    pass


class CounterReused(ReaderError):
    pass


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ReaderOutput:
    """What the reader gives the phone: no clear PIN, track or key."""

    ksn: bytes
    pin_block: bytes | None  # None when no PIN was entered
    track_data: bytes


class DukptReader:
    def __init__(self, *, scheme: DukptScheme, initial_key: bytes, initial_ksn: bytes, counter: int = 0) -> None:
        self.scheme = scheme
        self._initial_key = initial_key
        self.initial_ksn = initial_ksn
        #: The last counter used (0: none yet). Persist it with the reader's state.
        self.counter = counter

    def __repr__(self) -> str:
        return f"DukptReader(scheme={self.scheme.value}, counter={self.counter})"  # never the key

    def _usable(self, counter: int) -> bool:
        return tdes_counter_usable(counter) if self.scheme is DukptScheme.TDES else aes_counter_usable(counter)

    def _limit(self) -> int:
        return TDES_COUNTER_MASK if self.scheme is DukptScheme.TDES else (1 << AES_COUNTER_BITS) - 1

    def next_counter(self) -> int:
        """The next usable counter after the last one used."""
        counter = self.counter + 1
        while counter <= self._limit() and not self._usable(counter):
            counter += 1
        if counter > self._limit():
            raise ReaderExhausted("the reader has used its last DUKPT counter: inject a new initial key")
        return counter

    def ksn(self, counter: int) -> bytes:
        if self.scheme is DukptScheme.TDES:
            return (int.from_bytes(self.initial_ksn, "big") | counter).to_bytes(len(self.initial_ksn), "big")
        return self.initial_ksn[:AES_KEY_ID_LEN] + counter.to_bytes(4, "big")

    def encrypt(self, *, pan: str, track2: str, pin: str | None, counter: int | None = None) -> ReaderOutput:
        """Encrypt one transaction's PIN and track 2 under the keys of ``counter`` (default: the next one)."""
        counter = self.next_counter() if counter is None else counter
        if counter <= self.counter:
            raise CounterReused(f"DUKPT counter {counter} is at or below the last one used ({self.counter})")
        if not self._usable(counter):
            raise ReaderError(f"DUKPT counter {counter} is not usable")
        ksn = self.ksn(counter)
        track = track2.encode("ascii")
        if self.scheme is DukptScheme.TDES:
            key = tdes_transaction_key(self._initial_key, ksn)
            pin_block = encrypt_pin_block(tdes_usage_key(key, KeyUsage.PIN), pin, pan) if pin is not None else None
            data = tdes_cbc_encrypt(tdes_usage_key(key, KeyUsage.DATA), track + bytes(-len(track) % BLOCK))
        else:
            key_id = self.initial_ksn[:AES_KEY_ID_LEN]
            intermediate = aes_intermediate_key(self._initial_key, key_id, counter)
            data_key = aes_usage_key(intermediate, key_id, counter, KeyUsage.DATA)
            encryptor = Cipher(algorithms.AES(data_key), modes.CBC(bytes(AES_BLOCK))).encryptor()
            data = encryptor.update(track + bytes(-len(track) % AES_BLOCK)) + encryptor.finalize()
            pin_key = aes_usage_key(intermediate, key_id, counter, KeyUsage.PIN)
            pin_block = format4_encipher(pin_key, pin, pan) if pin is not None else None
        self.counter = counter
        return ReaderOutput(ksn=ksn, pin_block=pin_block, track_data=data)


#: Bits of a TDES KSN's device id (after the 5-byte key set id, before the 21-bit counter).
READER_DEVICE_BITS: Final = 19


def initial_ksn_for(key_set_id: str, terminal_id: str, scheme: DukptScheme = DukptScheme.TDES) -> bytes:
    """The TEST reader paired with ``terminal_id``: TDES initial KSN = key set id ‖ a device id (the terminal id
    modulo 2^19) ‖ counter 0; AES initial key id = key set id ‖ that device id in 3 bytes."""
    device = int(terminal_id) % (1 << READER_DEVICE_BITS) if terminal_id.isdigit() else 0
    if scheme is DukptScheme.AES:
        return bytes.fromhex(key_set_id) + device.to_bytes(3, "big")
    return (int(key_set_id, 16) << 40 | device << 21).to_bytes(10, "big")


def inject(bdk: bytes, initial_ksn: bytes, scheme: DukptScheme = DukptScheme.TDES) -> DukptReader:
    """The key injection facility: derive the reader's initial key from the BDK; the reader keeps only that."""
    if scheme is DukptScheme.TDES:
        ksn = tdes_initial_ksn(initial_ksn)
        return DukptReader(scheme=scheme, initial_key=tdes_ipek(bdk, ksn), initial_ksn=ksn)
    key_id = initial_ksn[:AES_KEY_ID_LEN]
    return DukptReader(
        scheme=scheme, initial_key=aes_initial_key(bdk, key_id), initial_ksn=key_id + bytes(4)
    )  # fmt: skip
