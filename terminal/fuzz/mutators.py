"""The mutators, sans-IO: each takes a valid payload (no length prefix) and a seeded RNG and returns the bytes
to put on the wire (length prefix included) and whether to abandon the connection after them.

Every mutator is small, named and deterministic for a given RNG state, so ``--seed`` replays a run exactly.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Sequence
from typing import Final

from wire.codec import decode_pos_body, encode_pos_body
from wire.errors import WireError
from wire.framing import LENGTH_PREFIX_LEN
from wire.posframe import BODY_OFFSET
from wire.tpdu import TPDU_ID, TPDU_LEN

#: Offset of the first field after the MTI (2 BCD bytes) and the primary bitmap (8 bytes) in a POS body.
FIRST_FIELD_OFFSET: Final = 2 + 8
#: Fields every request carries (PROTOCOL.md §1); one is dropped by ``missing_field``.
MANDATORY_FIELDS: Final = ("3", "4", "11", "41", "42", "60", "64")
#: Most garbage appended by ``trailing_garbage``.
MAX_GARBAGE: Final = 64
#: LLVAR length written by ``llvar_overrun``: 99 digits, above every POS LLVAR maximum (field 2: 19).
OVERRUN_LENGTH_BCD: Final = 0x99


@dataclasses.dataclass(frozen=True, slots=True)
class Mutant:
    mutator: str
    data: bytes  # exactly what goes on the wire
    abandon: bool = False  # close the connection right after sending, without waiting for an answer


def prefixed(payload: bytes) -> bytes:
    return len(payload).to_bytes(LENGTH_PREFIX_LEN, "big") + payload


def bit_flip(payload: bytes, rng: random.Random) -> Mutant:
    """One bit flipped anywhere in the payload."""
    data = bytearray(payload)
    bit = rng.randrange(len(data) * 8)
    data[bit // 8] ^= 1 << (bit % 8)
    return Mutant("bit_flip", prefixed(bytes(data)))


def truncation(payload: bytes, rng: random.Random) -> Mutant:
    """The payload cut short, with an honest length prefix for what is left."""
    return Mutant("truncation", prefixed(payload[: rng.randrange(len(payload))]))


def lying_length(payload: bytes, rng: random.Random) -> Mutant:
    """The length prefix says more (the host waits for bytes that never come) or less (the rest looks like the
    start of the next frame) than the payload; the connection is then closed."""
    claimed = rng.choice([rng.randrange(len(payload)), rng.randrange(len(payload) + 1, 0x10000)])
    return Mutant("lying_length", claimed.to_bytes(LENGTH_PREFIX_LEN, "big") + payload, abandon=True)


def wrong_tpdu(payload: bytes, rng: random.Random) -> Mutant:
    """A TPDU with a wrong ID byte, or a destination no route names."""
    data = bytearray(payload)
    if rng.random() < 0.5:
        data[0] = rng.choice([b for b in range(256) if b != TPDU_ID])
    else:
        data[1:3] = rng.choice([b"\x00\x00", b"\xff\xff", b"\x09\x99"])
    return Mutant("wrong_tpdu", prefixed(bytes(data)))


def response_mti(payload: bytes, rng: random.Random) -> Mutant:
    """A request's MTI turned into its response's (0200 → 0210): an answer sent as a request."""
    data = bytearray(payload)
    data[BODY_OFFSET + 1] |= 0x10
    return Mutant("response_mti", prefixed(bytes(data)))


def missing_field(payload: bytes, rng: random.Random) -> Mutant:
    """A mandatory field the frame carries removed (bitmap and body re-encoded consistently)."""
    fields = decode_pos_body(payload[BODY_OFFSET:])
    present = [key for key in MANDATORY_FIELDS if key in fields]
    if present:
        del fields[rng.choice(present)]
    return Mutant("missing_field", prefixed(payload[:BODY_OFFSET] + encode_pos_body(fields)))


def non_bcd_nibble(payload: bytes, rng: random.Random) -> Mutant:
    """A nibble A–F where the MTI or the first field (BCD) must have a digit."""
    data = bytearray(payload)
    offset = BODY_OFFSET + rng.choice([0, 1, FIRST_FIELD_OFFSET, FIRST_FIELD_OFFSET + 1])
    nibble = rng.randrange(0xA, 0x10)
    data[offset] = (data[offset] & 0x0F) | (nibble << 4) if rng.random() < 0.5 else (data[offset] & 0xF0) | nibble
    return Mutant("non_bcd_nibble", prefixed(bytes(data)))


def llvar_overrun(payload: bytes, rng: random.Random) -> Mutant:
    """The first field's LL length set to 99 digits: beyond its maximum and, cut short, beyond the frame."""
    data = bytearray(payload)
    data[BODY_OFFSET + FIRST_FIELD_OFFSET] = OVERRUN_LENGTH_BCD
    cut = len(data) if rng.random() < 0.5 else BODY_OFFSET + FIRST_FIELD_OFFSET + 1 + rng.randrange(8)
    return Mutant("llvar_overrun", prefixed(bytes(data[:cut])))


def trailing_garbage(payload: bytes, rng: random.Random) -> Mutant:
    """Random bytes after the last field, inside the frame's length."""
    return Mutant("trailing_garbage", prefixed(payload + rng.randbytes(rng.randrange(1, MAX_GARBAGE + 1))))


def abandoned(payload: bytes, rng: random.Random) -> Mutant:
    """Part of a frame (prefix included) sent, then the connection closed mid-frame."""
    wire = prefixed(payload)
    return Mutant("abandoned", wire[: rng.randrange(1, len(wire))], abandon=True)


def empty_frame(payload: bytes, rng: random.Random) -> Mutant:
    """A zero-length frame, or one holding only the TPDU."""
    return Mutant("empty_frame", prefixed(payload[: rng.choice([0, TPDU_LEN])]))


Mutator = Callable[[bytes, random.Random], Mutant]
MUTATORS: Final[dict[str, Mutator]] = {
    m.__name__: m
    for m in (
        bit_flip,
        truncation,
        lying_length,
        wrong_tpdu,
        response_mti,
        missing_field,
        non_bcd_nibble,
        llvar_overrun,
        trailing_garbage,
        abandoned,
        empty_frame,
    )
}


class MutationEngine:
    """An endless, reproducible stream of mutants of ``seeds`` (same seed, same stream)."""

    def __init__(self, seeds: Sequence[bytes], seed: int, mutators: Sequence[str] = tuple(MUTATORS)) -> None:
        if not seeds:
            raise ValueError("the fuzzer needs at least one valid frame to mutate")
        unknown = [name for name in mutators if name not in MUTATORS]
        if unknown:
            raise ValueError(f"unknown mutators: {', '.join(unknown)} (known: {', '.join(MUTATORS)})")
        self._seeds = list(seeds)
        self._mutators = [MUTATORS[name] for name in mutators]
        self._rng = random.Random(seed)

    def next(self) -> Mutant:
        payload = self._rng.choice(self._seeds)
        mutator = self._rng.choice(self._mutators)
        try:
            return mutator(payload, self._rng)
        except WireError:  # a seed the mutator cannot parse (never for the terminal's own frames): flip a bit
            return bit_flip(payload, self._rng)
