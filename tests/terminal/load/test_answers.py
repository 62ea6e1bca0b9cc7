"""Answers read at fixed offsets (``terminal/load/answers.py``): what they read is what the full decode reads."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from terminal.load.answers import READ_FIELDS, AnswerLayouts
from wire.codec import decode_pos_body, encode_pos_body

DIGITS = "0123456789"
PRINTABLE = st.characters(min_codepoint=0x20, max_codepoint=0x7E)


def digits(size: int) -> st.SearchStrategy[str]:
    return st.text(DIGITS, min_size=size, max_size=size)


def ascii_text(size: int) -> st.SearchStrategy[str]:
    return st.text(PRINTABLE, min_size=size, max_size=size)


@st.composite
def answers(draw: st.DrawFn) -> dict[str, str]:
    """A POS answer as a host may send it: the fields the engine reads, and others (some variable-length)."""
    fields = {
        "t": draw(st.sampled_from(["0210", "0110", "0410", "0230", "0830"])),
        "11": draw(digits(6)),
        "39": draw(ascii_text(2)),
        "41": draw(ascii_text(8)),
    }
    optional = {
        "2": st.text(DIGITS, min_size=13, max_size=19),
        "3": digits(6),
        "4": digits(12),
        "12": digits(6),
        "13": digits(4),
        "32": st.text(DIGITS, min_size=1, max_size=11),
        "37": ascii_text(12),
        "38": ascii_text(6),
        "42": ascii_text(15),
        "44": st.text(PRINTABLE, max_size=25),
        "49": digits(3),
        "60": st.text(DIGITS, min_size=1, max_size=17),
        "63": st.text(PRINTABLE, max_size=40),
        "64": st.binary(min_size=8, max_size=8).map(lambda b: b.hex().upper()),
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            fields[key] = draw(strategy)
    return fields


def read_by_decode(body: bytes) -> dict[str, str]:
    fields = decode_pos_body(body)
    return {key: fields[key] for key in READ_FIELDS}


@given(
    learnt=answers(),
    stan=digits(6),
    code=ascii_text(2),
    terminal=ascii_text(8),
)
def test_an_answer_of_a_learnt_shape_reads_as_the_full_decode(
    learnt: dict[str, str], stan: str, code: str, terminal: str
) -> None:
    layouts = AnswerLayouts()
    layouts.learn(encode_pos_body(learnt), learnt)
    same_shape = encode_pos_body(learnt | {"11": stan, "39": code, "41": terminal})
    assert layouts.read(same_shape) == read_by_decode(same_shape)


@given(learnt=answers(), other=answers())
def test_an_answer_of_another_shape_is_read_right_or_not_at_all(learnt: dict[str, str], other: dict[str, str]) -> None:
    layouts = AnswerLayouts()
    layouts.learn(encode_pos_body(learnt), learnt)
    body = encode_pos_body(other)
    read = layouts.read(body)
    assert read is None or read == read_by_decode(body)


def test_an_answer_whose_fields_moved_is_not_read() -> None:
    answer = {"t": "0210", "2": "6200001234567890", "11": "000001", "39": "00", "41": "20000001", "44": "AB"}
    body = encode_pos_body(answer)
    layouts = AnswerLayouts()
    assert layouts.read(body) is None  # nothing learnt yet
    layouts.learn(body, answer)
    assert layouts.read(body) == {"t": "0210", "11": "000001", "39": "00", "41": "20000001"}
    # A PAN one digit longer (one byte more) and 44 one character shorter: the same MTI, bitmap and length,
    # but 11, 39 and 41 one byte further on: the length prefixes tell, and nothing is read.
    moved = encode_pos_body(answer | {"2": "62000012345678901", "44": "A"})
    assert len(moved) == len(body)
    assert layouts.read(moved) is None
    # 39 not ASCII: not read (the full decode names the error).
    code_at = body.index(b"00" + b"20000001")
    assert layouts.read(body[:code_at] + b"\xff\xff" + body[code_at + 2 :]) is None
