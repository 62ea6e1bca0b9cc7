"""Each fuzz mutator does what its name says, and the engine is reproducible from its seed."""

from __future__ import annotations

import random

import pytest

from acqkit.config import AcqsimConfig
from terminal.fuzz import mutators as m
from terminal.fuzz.seeds import seed_payloads
from wire.codec import decode_pos_body
from wire.errors import MessageDecodeError, WireError
from wire.posframe import BODY_OFFSET, PosFrame
from wire.tpdu import TPDU_ID

CONFIG = AcqsimConfig.default()
SEEDS = seed_payloads(CONFIG, "10000002", random.Random(0))
PURCHASE = SEEDS[3]


def payload_of(mutant: m.Mutant) -> bytes:
    declared = int.from_bytes(mutant.data[:2], "big")
    assert declared == len(mutant.data) - 2, "the length prefix must be honest for this mutator"
    return mutant.data[2:]


def test_seeds_are_valid_requests() -> None:
    for payload in SEEDS:
        fields = decode_pos_body(PosFrame.parse(payload).body)
        assert fields["t"] in ("0800", "0820", "0200", "0100")


@pytest.mark.parametrize("seed", range(20))
def test_bit_flip_changes_exactly_one_bit(seed: int) -> None:
    got = payload_of(m.bit_flip(PURCHASE, random.Random(seed)))
    assert len(got) == len(PURCHASE)
    assert sum(bin(a ^ b).count("1") for a, b in zip(got, PURCHASE, strict=True)) == 1


@pytest.mark.parametrize("seed", range(20))
def test_truncation_is_a_proper_prefix(seed: int) -> None:
    got = payload_of(m.truncation(PURCHASE, random.Random(seed)))
    assert len(got) < len(PURCHASE) and PURCHASE.startswith(got)


@pytest.mark.parametrize("seed", range(20))
def test_lying_length_prefix_lies_and_abandons(seed: int) -> None:
    mutant = m.lying_length(PURCHASE, random.Random(seed))
    assert mutant.abandon and mutant.data[2:] == PURCHASE
    assert int.from_bytes(mutant.data[:2], "big") != len(PURCHASE)


@pytest.mark.parametrize("seed", range(20))
def test_wrong_tpdu(seed: int) -> None:
    got = payload_of(m.wrong_tpdu(PURCHASE, random.Random(seed)))
    assert got[0] != TPDU_ID or got[1:3] != PURCHASE[1:3]
    assert got[5:] == PURCHASE[5:]


def test_response_mti_as_request() -> None:
    got = payload_of(m.response_mti(PURCHASE, random.Random(0)))
    assert decode_pos_body(got[BODY_OFFSET:])["t"] == "0210"


@pytest.mark.parametrize("seed", range(20))
def test_missing_field_drops_one_mandatory_field(seed: int) -> None:
    got = payload_of(m.missing_field(PURCHASE, random.Random(seed)))
    before = decode_pos_body(PURCHASE[BODY_OFFSET:])
    after = decode_pos_body(got[BODY_OFFSET:])
    dropped = before.keys() - after.keys()
    assert len(dropped) == 1 and dropped <= set(m.MANDATORY_FIELDS)


@pytest.mark.parametrize("seed", range(20))
def test_non_bcd_nibble_is_refused_by_the_decoder(seed: int) -> None:
    got = payload_of(m.non_bcd_nibble(PURCHASE, random.Random(seed)))
    with pytest.raises(WireError):
        decode_pos_body(got[BODY_OFFSET:])


@pytest.mark.parametrize("seed", range(10))
def test_llvar_overrun_declares_more_than_the_field_allows(seed: int) -> None:
    got = payload_of(m.llvar_overrun(PURCHASE, random.Random(seed)))
    assert got[BODY_OFFSET + m.FIRST_FIELD_OFFSET] == m.OVERRUN_LENGTH_BCD
    with pytest.raises(MessageDecodeError) as err:
        decode_pos_body(got[BODY_OFFSET:])
    assert err.value.field == "2"


@pytest.mark.parametrize("seed", range(10))
def test_trailing_garbage_keeps_the_frame_and_adds_bytes(seed: int) -> None:
    got = payload_of(m.trailing_garbage(PURCHASE, random.Random(seed)))
    assert got.startswith(PURCHASE) and 1 <= len(got) - len(PURCHASE) <= m.MAX_GARBAGE


@pytest.mark.parametrize("seed", range(10))
def test_abandoned_sends_part_of_a_frame_then_closes(seed: int) -> None:
    mutant = m.abandoned(PURCHASE, random.Random(seed))
    whole = m.prefixed(PURCHASE)
    assert mutant.abandon and whole.startswith(mutant.data) and 0 < len(mutant.data) < len(whole)


def test_engine_is_reproducible_and_uses_every_mutator() -> None:
    first = m.MutationEngine(SEEDS, seed=7)
    second = m.MutationEngine(SEEDS, seed=7)
    stream = [first.next() for _ in range(2000)]
    assert stream == [second.next() for _ in range(2000)]
    assert {mutant.mutator for mutant in stream} == set(m.MUTATORS)
    assert stream != [m.MutationEngine(SEEDS, seed=8).next() for _ in range(2000)]


def test_engine_refuses_unknown_mutators_and_no_seeds() -> None:
    with pytest.raises(ValueError, match="unknown mutators: nope"):
        m.MutationEngine(SEEDS, seed=0, mutators=["nope"])
    with pytest.raises(ValueError, match="at least one"):
        m.MutationEngine([], seed=0)
