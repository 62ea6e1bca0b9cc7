"""A bad frame costs only its sender: the core never raises, and answers where an answer can be built.

Driven without a network through the real journal and ledger engine (the harness); the same frames over
real TCP, interleaved with a good terminal's traffic, are in ``test_bad_frames_tcp.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from frontend.core import Reply
from tests.frontend.harness import Harness
from wire.codec import decode_pos_body, encode_pos_body
from wire.constants import ResponseCode as RC
from wire.constants import response_mti
from wire.posframe import BODY_OFFSET, PosFrame


def drive(harness: Harness, payload: bytes) -> Reply:
    return harness.drive(payload)


def with_body(payload: bytes, fields: dict[str, str]) -> bytes:
    return payload[:BODY_OFFSET] + encode_pos_body(fields)


@pytest.fixture
def fe(tmp_path: Path) -> Harness:
    return Harness(tmp_path).signed_on()


def purchase(fe: Harness) -> bytes:
    card = fe.card()
    return fe.terminal.financial("purchase", card, amount=100, pin=card.pin)


def code_of(reply: Reply) -> str | None:
    return None if reply.body is None else decode_pos_body(reply.body).get("39")


def test_undecodable_body_is_dropped_with_field_and_offset(fe: Harness) -> None:
    payload = purchase(fe)
    reply = drive(fe, payload[: BODY_OFFSET + 12])  # cut inside the body
    assert reply.body is None
    assert "field" in reply.note and "offset" in reply.note


@pytest.mark.parametrize("mti", ["0210", "0410", "0810", "0830", "0510"])
def test_a_response_mti_sent_as_a_request_is_dropped(fe: Harness, mti: str) -> None:
    fields = decode_pos_body(PosFrame.parse(purchase(fe)).body)
    reply = drive(fe, with_body(purchase(fe), {**fields, "t": mti}))
    assert reply.body is None and "not a request" in reply.note


def test_an_unknown_request_mti_is_answered_40(fe: Harness) -> None:
    fields = decode_pos_body(PosFrame.parse(purchase(fe)).body)
    assert code_of(drive(fe, with_body(purchase(fe), {**fields, "t": "0600"}))) == RC.FUNCTION_NOT_SUPPORTED


@pytest.mark.parametrize("missing", ["60", "11", "41", "42", "64"])
def test_a_reversal_without_a_mandatory_field_is_answered_30_or_its_check(fe: Harness, missing: str) -> None:
    fields = decode_pos_body(PosFrame.parse(purchase(fe)).body)
    reversal = {k: v for k, v in {**fields, "t": "0400", "39": "98"}.items() if k != missing}
    reply = drive(fe, with_body(purchase(fe), reversal))
    assert reply.body is not None
    assert code_of(reply) in {RC.FORMAT_ERROR, RC.NOT_PERMITTED_TO_TERMINAL, RC.INVALID_MERCHANT, RC.MAC_FAILED}


@pytest.mark.parametrize("missing", ["3", "11", "41", "42", "60", "4", "49", "22", "25"])
def test_a_financial_request_without_a_mandatory_field_is_answered_not_raised(fe: Harness, missing: str) -> None:
    fields = decode_pos_body(PosFrame.parse(purchase(fe)).body)
    reply = drive(fe, with_body(purchase(fe), {k: v for k, v in fields.items() if k != missing}))
    assert reply.body is not None and code_of(reply) != RC.APPROVED


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_mutation_of_a_purchase_body_never_raises(fe: Harness, data: st.DataObject) -> None:
    payload = purchase(fe)
    body = bytearray(payload[BODY_OFFSET:])
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(body) - 1))
        body[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(body)))
    mutated = payload[:BODY_OFFSET] + bytes(body[:cut])
    reply = drive(fe, mutated)
    if reply.body is not None:  # an answer only to a request that decodes, with the request's MTI + 10
        assert decode_pos_body(reply.body)["t"] == response_mti(decode_pos_body(mutated[BODY_OFFSET:])["t"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(drop=st.sets(st.sampled_from(["2", "3", "4", "11", "14", "22", "25", "35", "41", "42", "49", "52", "60"])))
def test_any_missing_fields_never_raise(fe: Harness, drop: set[str]) -> None:
    essential = {"2", "3", "4", "11", "22", "25", "35", "41", "42", "49", "60"} & drop
    for mti in ("0200", "0400", "0100", "0220"):
        fields = {**decode_pos_body(PosFrame.parse(purchase(fe)).body), "t": mti}
        reply = drive(fe, with_body(purchase(fe), {k: v for k, v in fields.items() if k not in drop}))
        if reply.body is not None:  # answered with the request's MTI + 10, and never approved without them
            answer = decode_pos_body(reply.body)
            assert answer["t"] == response_mti(mti)
            if essential and mti != "0400":
                assert code_of(reply) != RC.APPROVED
