"""Field 55 (PROTOCOL.md §7): tag lists and order, lengths, the ARQC input, the answer's 91 and scripts."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from wire.errors import MessageDecodeError, MessageEncodeError
from wire.icc import (
    FIXED_LENGTHS,
    REQUEST_REQUIRED,
    REQUEST_TAGS,
    REVERSAL_TAGS,
    IssuerAnswer,
    IssuerScript,
    arqc_input,
    build_icc,
    parse_icc,
    script_result,
)
from wire.tlv import parse_tlv

# The values of the published PBOC example (PROTOCOL.md §7), as a terminal would send them.
EXAMPLE = {
    "9F26": bytes.fromhex("5D016C91005E7CC2"),
    "9F27": b"\x80",
    "9F10": bytes.fromhex("07010103A04002010A010000000000"),
    "9F37": bytes.fromhex("1E78EEBC"),
    "9F36": bytes.fromhex("0240"),
    "95": bytes.fromhex("0080046000"),
    "9A": bytes.fromhex("140701"),
    "9C": b"\x00",
    "9F02": bytes.fromhex("000000000001"),
    "5F2A": bytes.fromhex("0156"),
    "82": bytes.fromhex("7D00"),
    "9F1A": bytes.fromhex("0156"),
    "9F03": bytes(6),
    "9F33": bytes.fromhex("E0E1C8"),
}


def test_a_request_keeps_the_protocol_order_and_yields_the_published_arqc_input() -> None:
    shuffled = dict(reversed(list(EXAMPLE.items())))
    data = build_icc(shuffled, REQUEST_TAGS)
    assert [tag for tag, _ in parse_tlv(data)] == [t for t in REQUEST_TAGS if t in EXAMPLE]
    values = parse_icc(data, REQUEST_REQUIRED)
    assert arqc_input(values).hex().upper() == (
        "000000000001000000000000015600800460000156140701001E78EEBC7D00024003A04002"
    )


def test_a_tag_that_does_not_belong_is_refused_when_building() -> None:
    with pytest.raises(MessageEncodeError, match="9F26"):
        build_icc({"9F26": bytes(8)}, REVERSAL_TAGS)


@pytest.mark.parametrize(
    ("hex_data", "reason", "offset"),
    [
        ("9F2608112233", "runs past", 2),  # truncated value
        ("9F", "ends inside a tag", 0),  # truncated tag
        ("9F2607" + "11" * 7, "9F26 is 7 bytes", 0),  # wrong length
        ("9F360202409F36020241", "appears twice", 5),  # repeated
        ("9F10030A0B0C", "9F10 is 3 bytes", 0),  # IAD too short to hold a CVR
        ("9F3602024095", "ends inside a tag", 5),
    ],
)
def test_malformed_field_55_names_the_tag_and_offset(hex_data: str, reason: str, offset: int) -> None:
    with pytest.raises(MessageDecodeError) as caught:
        parse_icc(bytes.fromhex(hex_data))
    assert reason in caught.value.reason and caught.value.offset == offset and caught.value.field == "55"


def test_a_missing_required_tag_is_named() -> None:
    partial = {k: v for k, v in EXAMPLE.items() if k != "9F37"}
    with pytest.raises(MessageDecodeError, match="9F37"):
        parse_icc(build_icc(partial, REQUEST_TAGS), REQUEST_REQUIRED)


SCRIPT = IssuerScript(script_id=bytes.fromhex("00000001"), commands=(bytes.fromhex("8424000008AABBCCDD11223344"),))


def test_the_answer_round_trips_with_scripts() -> None:
    answer = IssuerAnswer(arpc=bytes.fromhex("21415243527CE78F"), arc="01", before=(SCRIPT,), after=(SCRIPT, SCRIPT))
    data = answer.encode()
    assert data.startswith(bytes.fromhex("910A21415243527CE78F3031"))
    assert IssuerAnswer.parse(data) == answer


@pytest.mark.parametrize(
    "hex_data",
    [
        "71080102030405060708",  # no 91, and a script holding junk
        "910A21415243527CE78F3031910A21415243527CE78F3031",  # 91 twice
        "910A21415243527CE78F30319F2701" + "80",  # a request tag in an answer
        "910A21415243527CE78F3031" + "7106" + "9F180400000001",  # a script without a command
    ],
)
def test_bad_answers_are_refused(hex_data: str) -> None:
    with pytest.raises(MessageDecodeError):
        IssuerAnswer.parse(bytes.fromhex(hex_data))


def test_script_results() -> None:
    assert script_result(bytes.fromhex("00000001")).hex() == "2000000001"
    assert script_result(bytes.fromhex("00000001"), failed_command=2).hex() == "1200000001"


values_by_tag = st.fixed_dictionaries(
    {},
    optional={
        tag: st.binary(min_size=FIXED_LENGTHS[tag], max_size=FIXED_LENGTHS[tag])
        if tag in FIXED_LENGTHS
        else st.binary(min_size=7, max_size=32)
        if tag == "9F10"
        else st.binary(max_size=8)
        for tag in REQUEST_TAGS
    },
)


@given(values_by_tag)
def test_any_request_values_round_trip(values: dict[str, bytes]) -> None:
    assert parse_icc(build_icc(values, REQUEST_TAGS)) == values


@given(st.binary(max_size=80))
@example(bytes.fromhex("9F3602"))
def test_any_bytes_parse_or_raise_our_error(data: bytes) -> None:
    for parse in (parse_icc, IssuerAnswer.parse):
        try:
            parse(data)
        except MessageDecodeError as exc:
            assert exc.field == "55" and exc.offset is not None and 0 <= exc.offset <= len(data)
