"""The HSM message trailer (X'19' txn:ID) that carries the transaction id to the HSM's log."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hsm_sim.trailer import DELIMITER, MARKER, split_trailer, trailer_txn, with_trailer


@given(st.binary(max_size=300), st.from_regex(r"T[0-9]{8}-[0-9]{6}", fullmatch=True))
def test_a_trailer_is_split_off_whatever_the_command_ends_with(command: bytes, txn: str) -> None:
    body, trailer = split_trailer(with_trailer(command, txn))
    assert body == command and trailer_txn(trailer) == txn


@given(st.binary(max_size=300))
def test_a_command_without_a_trailer_is_left_whole_unless_it_ends_like_one(command: bytes) -> None:
    body, trailer = split_trailer(command)
    assert body + trailer == command
    assert not trailer or trailer.startswith(DELIMITER + MARKER)


def test_no_trailer_for_an_id_that_does_not_fit_or_is_absent() -> None:
    assert with_trailer(b"0001M8", None) == b"0001M8"
    assert with_trailer(b"0001M8", "x" * 29) == b"0001M8"  # 4 + 29 > 32 characters
    assert with_trailer(b"0001M8", "T1 2") == b"0001M8"  # not a printable id
    assert split_trailer(b"0001M8\x19txn:") == (b"0001M8\x19txn:", b"")
