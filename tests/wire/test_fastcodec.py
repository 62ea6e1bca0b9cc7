"""The specialised codec (``wire/fastcodec.py``) against the pyiso8583 reference (``wire/refcodec.py``).

The proof the issue asks for: over every field of both specs, the fast path *answers* well-formed messages (it
is really used) with exactly the reference's bytes and dicts (in order); and for malformed values and bytes,
``wire.codec`` (fast path first, reference when it declines) ends exactly as the reference does — the same
result, or the same error class with the same field, offset and reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from wire import codec, refcodec
from wire.codec import _HOST, _POS, compile_host, compile_pos
from wire.constants import (
    SECURITY_CONTROL_FORMAT0_TDES,
    SECURITY_CONTROL_FORMAT0_TDES_TDK,
    ConditionCode,
    Mti,
    ProcessingCode,
)
from wire.errors import MessageDecodeError, MessageEncodeError, WireError
from wire.fastcodec import MAX_SHAPES, SIGHTINGS_BEFORE_COMPILING, CompiledSpec, Unsupported, compile_spec
from wire.specs import HOST_SPEC, POS_SPEC, POS_TRACK_FIELDS, pos_track_refused

POS_FIELDS = sorted((k for k in POS_SPEC if k.isdigit()), key=int)
#: Every host field pyiso8583's 1987 layout defines, but the bitmaps (1, 65: written by the codec).
HOST_ALL_FIELDS = sorted((k for k in HOST_SPEC if k.isdigit() and k not in ("1", "65")), key=int)
ASCII = st.characters(max_codepoint=127)


def _valid(spec: Mapping[str, Any], *, track: bool, digits: bool) -> st.SearchStrategy[str]:
    """Any value the field's spec accepts (for nibble fields: what acqsim's BCD and track rules accept)."""
    fixed = spec["len_type"] == 0
    size: int = spec["max_len"]
    small = size if fixed else min(size, 40)
    if spec.get("len_count") == "nibbles":
        alphabet = "0123456789ABCEF=" if track else "0123456789" if digits else "0123456789ABCDEFabcdef"
        return st.text(alphabet, min_size=size if fixed else 0, max_size=small)
    if spec["data_enc"] == "b":
        return st.binary(min_size=size if fixed else 0, max_size=small).map(
            lambda b: b.hex().upper() if len(b) % 2 else b.hex()  # both cases: pyiso8583 accepts either
        )
    return st.text(ASCII, min_size=size if fixed else 0, max_size=small)


def _pos_valid(field: str) -> st.SearchStrategy[str]:
    return _valid(POS_SPEC[field], track=field in POS_TRACK_FIELDS, digits=True)


def _host_valid(field: str) -> st.SearchStrategy[str]:
    return _valid(HOST_SPEC[field], track=False, digits=False)


def _messages(
    fields: list[str], value: Callable[[str], st.SearchStrategy[str]], mti: st.SearchStrategy[str]
) -> st.SearchStrategy[dict[str, str]]:
    @st.composite
    def build(draw: st.DrawFn) -> dict[str, str]:
        chosen = draw(st.lists(st.sampled_from(fields), unique=True, max_size=16))
        items = [(field, draw(value(field))) for field in chosen]
        message = dict(items)
        if pos_track_refused(message) is not None:  # encrypted (hex) track digits: 53 says so, as a terminal does
            message["53"] = SECURITY_CONTROL_FORMAT0_TDES_TDK
            items = list(message.items())
        if draw(st.booleans()):
            items.sort(key=lambda item: int(item[0]))  # as our own code builds them: in field order
        return {"t": draw(mti), **dict(items)}

    return build()


#: The fast path's two forms, each proved on its own: every shape compiled at its first sighting, and none (the
#: per-field loop, which serves a shape until it is compiled).
POS_FORMS = {"shapes": compile_pos(compile_after=1), "loop": compile_pos(compile_after=None)}
HOST_FORMS = {"shapes": compile_host(compile_after=1), "loop": compile_host(compile_after=None)}
FORMS = sorted(POS_FORMS)


def _fast_then_reference(fast: Callable[[Any], Any], reference: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """What ``wire.codec`` does with this form of the fast path: the reference decides what it declines."""

    def run(argument: Any) -> Any:
        try:
            return fast(argument)
        except Unsupported:
            return reference(argument)

    return run


POS_MESSAGES = _messages(POS_FIELDS, _pos_valid, st.text("0123456789", min_size=4, max_size=4))
HOST_MESSAGES = _messages(HOST_ALL_FIELDS, _host_valid, st.text(ASCII, min_size=4, max_size=4))


def _outcome(operation: Callable[[Any], Any], argument: Any) -> tuple[Any, ...]:
    """What an operation ends with: its result (a dict as ordered items), or its error's class and context."""
    try:
        result = operation(argument)
    except WireError as error:
        return type(error), error.field, error.offset, error.reason
    return ("ok", list(result.items()) if isinstance(result, dict) else result)


def _partial(
    decode: Callable[[bytes], tuple[dict[str, str], WireError | None]], data: bytes
) -> tuple[list[tuple[str, str]], tuple[Any, ...] | None]:
    fields, error = decode(data)
    return list(fields.items()), None if error is None else (type(error), error.field, error.offset, error.reason)


@pytest.mark.parametrize("form", FORMS)
@given(fields=POS_MESSAGES)
@example(fields={"t": "0200", "22": "021", "23": "001", "35": "62=1", "48": "123", "60": "1"})
def test_pos_fast_path_answers_every_field_exactly_as_pyiso8583(form: str, fields: dict[str, str]) -> None:
    fast = POS_FORMS[form]
    body = fast.encode(fields)  # raises Unsupported if the fast path declined: the test fails
    assert body == refcodec.encode_pos_body(fields)
    assert list(fast.decode(body).items()) == list(refcodec.decode_pos_body(body).items())


@pytest.mark.parametrize("form", FORMS)
@given(fields=HOST_MESSAGES)
@example(fields={"t": "0200", "2": "6200001000000003", "128": "ABCDEF0123456789", "90": "0" * 42})
def test_host_fast_path_answers_every_field_exactly_as_pyiso8583(form: str, fields: dict[str, str]) -> None:
    fast = HOST_FORMS[form]
    data = fast.encode(fields)
    assert data == refcodec.encode_host(fields)
    assert list(fast.decode(data).items()) == list(refcodec.decode_host(data).items())
    assert _partial(codec.decode_host_partial, data) == _partial(refcodec.decode_host_partial, data)


@pytest.mark.parametrize(("link", "field"), [("pos", f) for f in POS_FIELDS] + [("host", f) for f in HOST_ALL_FIELDS])
def test_every_field_at_its_maximum_and_one_past_it(link: str, field: str) -> None:
    spec = (POS_SPEC if link == "pos" else HOST_SPEC)[field]
    pos = link == "pos"
    encode, reference = (
        (codec.encode_pos_body, refcodec.encode_pos_body) if pos else (codec.encode_host, refcodec.encode_host)
    )
    unit = "1" if spec.get("len_count") == "nibbles" or spec["data_enc"] != "b" else "AB"
    for count in (spec["max_len"], spec["max_len"] + 1):
        fields = {"t": "0200", field: unit * count}
        assert _outcome(encode, fields) == _outcome(reference, fields)
    at_most = {"t": "0200", field: unit * spec["max_len"]}
    body = encode(at_most)
    decode, decode_reference = (
        (codec.decode_pos_body, refcodec.decode_pos_body) if pos else (codec.decode_host, refcodec.decode_host)
    )
    assert _outcome(decode, body) == _outcome(decode_reference, body) == ("ok", list(at_most.items()))


def _bad_value(valid: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    """A value that is (probably) wrong for its field: longer, shorter, a wrong character, or not a string."""
    return st.one_of(
        valid.map(lambda v: v + "0"),
        valid.map(lambda v: v[:-1]),
        st.tuples(valid, st.sampled_from("AaFf=D :é\x00\x7f\u0663")).map(lambda p: p[0][:1] + p[1] + p[0][2:]),
        st.sampled_from([None, 12, b"12"]),
        st.text(max_size=6),
    )


def _malformed(
    messages: st.SearchStrategy[dict[str, str]], fields: list[str], value: Callable[[str], st.SearchStrategy[str]]
) -> st.SearchStrategy[dict[str, Any]]:
    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        message: dict[str, Any] = draw(messages)
        for _ in range(draw(st.integers(1, 2))):
            field = draw(st.sampled_from([*fields, "t", "h", "1", "65", "129", "0", "x", "5"]))
            message[field] = draw(_bad_value(value(field) if field in fields else st.just("0200")))
        if draw(st.booleans()):
            message.pop("t", None)
        return message

    return build()


@pytest.mark.parametrize("form", FORMS)
@given(fields=_malformed(POS_MESSAGES, POS_FIELDS, _pos_valid))
def test_pos_encode_of_bad_values_ends_as_the_reference(form: str, fields: dict[str, Any]) -> None:
    encode = _fast_then_reference(POS_FORMS[form].encode, refcodec.encode_pos_body)
    assert _outcome(encode, fields) == _outcome(refcodec.encode_pos_body, fields)


@pytest.mark.parametrize("form", FORMS)
@given(fields=_malformed(HOST_MESSAGES, HOST_ALL_FIELDS, _host_valid))
def test_host_encode_of_bad_values_ends_as_the_reference(form: str, fields: dict[str, Any]) -> None:
    encode = _fast_then_reference(HOST_FORMS[form].encode, refcodec.encode_host)
    assert _outcome(encode, fields) == _outcome(refcodec.encode_host, fields)


def _mutated(bodies: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    """A valid body cut short, extended, with a byte replaced, inserted or removed — or just any bytes."""

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        body = draw(bodies)
        at = draw(st.integers(0, len(body)))
        byte = bytes([draw(st.integers(0, 255))])
        return draw(
            st.sampled_from(
                [
                    body[:at],
                    body + byte,
                    body[:at] + byte + body[at + 1 :],
                    body[:at] + byte + body[at:],
                    body[:at] + body[at + 1 :],
                ]
            )
        )

    return st.one_of(build(), st.binary(max_size=80))


@pytest.mark.parametrize("form", FORMS)
@given(body=_mutated(POS_MESSAGES.map(refcodec.encode_pos_body)))
@example(body=b"\x02\x00\x80" + bytes(15))  # a secondary bitmap on the POS link
@example(body=b"\x02\x00\x00\x00\x00\x00\x00\x00\x02\x00" + b"\x21\x3f")  # field 23 without its left pad
def test_pos_decode_of_bad_bytes_ends_as_the_reference(form: str, body: bytes) -> None:
    decode = _fast_then_reference(POS_FORMS[form].decode, refcodec.decode_pos_body)
    assert _outcome(decode, body) == _outcome(refcodec.decode_pos_body, body)
    assert _outcome(codec.decode_pos_body, body) == _outcome(refcodec.decode_pos_body, body)


@pytest.mark.parametrize("form", FORMS)
@given(data=_mutated(HOST_MESSAGES.map(refcodec.encode_host)))
@example(data=b"0200" + b"C000000000000000" + b"8000000000000000" + b"0" * 16)  # a tertiary bitmap
@example(data=b"0200" + b"4000000000000000" + b"+2" + b"12")  # a length pyiso8583 reads with int()
def test_host_decode_of_bad_bytes_ends_as_the_reference(form: str, data: bytes) -> None:
    decode = _fast_then_reference(HOST_FORMS[form].decode, refcodec.decode_host)
    assert _outcome(decode, data) == _outcome(refcodec.decode_host, data)
    assert _partial(codec.decode_host_partial, data) == _partial(refcodec.decode_host_partial, data)


@pytest.mark.parametrize("form", FORMS)
def test_the_fast_path_declines_rather_than_guesses(form: str) -> None:
    with pytest.raises(Unsupported):
        HOST_FORMS[form].decode(b"0200" + b"4000000000000000" + b" 2" + b"12")  # pyiso8583 would read " 2" as 2
    with pytest.raises(Unsupported):
        POS_FORMS[form].encode({"t": "0200", "3": "00000A"})
    assert codec.decode_host(b"0200" + b"4000000000000000" + b" 2" + b"12") == {"t": "0200", "2": "12"}


def test_a_spec_the_compiler_cannot_specialise_is_refused_at_compile_time() -> None:
    with pytest.raises(ValueError, match="header"):
        compile_spec({**POS_SPEC, "h": {**POS_SPEC["h"], "max_len": 2}})
    with pytest.raises(ValueError, match="encoding"):
        compile_spec({**POS_SPEC, "41": {**POS_SPEC["41"], "data_enc": "cp500"}})


def test_named_constants_take_the_fast_path() -> None:
    """Our messages carry ``StrEnum`` constants (MTIs, processing codes): the fast path takes them as strings."""
    fields = {"t": Mti.FINANCIAL_REQUEST, "3": ProcessingCode.PURCHASE, "25": ConditionCode.NORMAL, "39": "00"}
    assert _POS.encode(fields) == refcodec.encode_pos_body(fields)
    assert _HOST.encode(fields) == refcodec.encode_host(fields)


ENCRYPTED_TRACK = "6200001=A1B2C3E4F5A6B7C8=9001"  # a track 2 as a TDK-encrypting terminal sends it (dict form)


@pytest.mark.parametrize("field", sorted(POS_TRACK_FIELDS))
def test_an_encrypted_track_passes_only_where_field_53_says_so(field: str) -> None:
    encrypted = {"t": "0200", field: ENCRYPTED_TRACK, "53": SECURITY_CONTROL_FORMAT0_TDES_TDK}
    body = _POS.encode(encrypted)  # the fast path takes it
    assert body == refcodec.encode_pos_body(encrypted)
    assert list(_POS.decode(body).items()) == list(refcodec.decode_pos_body(body).items()) == list(encrypted.items())
    for security in ({"53": SECURITY_CONTROL_FORMAT0_TDES}, {}):
        with pytest.raises(MessageEncodeError) as encode_error:
            codec.encode_pos_body({"t": "0200", field: ENCRYPTED_TRACK, **security})
        assert encode_error.value.field == field
    # the same bytes with 53 rewritten to "clear tracks": refused naming the track and where it starts
    forged = body.replace(
        bytes.fromhex(SECURITY_CONTROL_FORMAT0_TDES_TDK), bytes.fromhex(SECURITY_CONTROL_FORMAT0_TDES)
    )
    with pytest.raises(MessageDecodeError) as decode_error:
        codec.decode_pos_body(forged)
    assert (decode_error.value.field, decode_error.value.offset) == (field, refcodec.pos_field_offsets(body)[field])


PURCHASE = {"t": "0200", "3": "000000", "4": "000000001000", "11": "000001", "41": "10000001", "49": "156"}


def test_a_shape_is_compiled_on_its_third_sighting_and_then_used() -> None:
    assert SIGHTINGS_BEFORE_COMPILING == 3
    fast = compile_pos()
    body = fast.encode(PURCHASE)
    assert (fast.decode(body), fast.decode(body), fast.shapes_compiled()) == (PURCHASE, PURCHASE, 0)
    assert fast.decode(body) == PURCHASE
    assert fast.shapes_compiled() == 1  # the decode shape, on its third sighting
    assert fast.encode(PURCHASE) == body
    assert fast.shapes_compiled() == 1
    assert fast.encode(PURCHASE) == body
    assert fast.shapes_compiled() == 2  # the encode shape, on its own third
    assert fast.encode(PURCHASE) == body and fast.decode(body) == PURCHASE


def test_compiled_shapes_are_bounded_and_the_rest_still_decode() -> None:
    """A peer sending ever new bitmaps fills at most ``MAX_SHAPES``; past them the per-field loop answers."""
    fast: CompiledSpec = compile_host(compile_after=1)
    numbers = [str(n) for n in range(2, 64) if HOST_SPEC[str(n)]["len_type"] == 0][:12]
    for mask in range(1, MAX_SHAPES + 6):
        fields = {"t": "0800", **{n: "0" * HOST_SPEC[n]["max_len"] for i, n in enumerate(numbers) if mask >> i & 1}}
        assert fast.decode(refcodec.encode_host(fields)) == fields
    assert fast.shapes_compiled() == MAX_SHAPES
