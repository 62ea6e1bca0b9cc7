"""Front-ends of a pool never hand out the same RRN: the ledger's idempotency key is (acquirer 32, RRN 37)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from frontend.journal import MAX_INSTANCES, RRN_BLOCK, Journal, format_rrn

instances = st.integers(min_value=1, max_value=MAX_INSTANCES)
serials = st.integers(min_value=0, max_value=10**9)


@given(a=instances, b=instances, serial_a=serials, serial_b=serials)
def test_rrns_of_two_instances_differ_whatever_their_serials(a: int, b: int, serial_a: int, serial_b: int) -> None:
    first, second = format_rrn("26338", serial_a, a), format_rrn("26338", serial_b, b)
    assert len(first) == len(second) == 12 and first.isdigit()
    assert first[5] == str(a)
    if a != b:
        assert first != second


def test_two_journals_of_a_pool_hand_out_disjoint_rrns_across_blocks_and_restarts(tmp_path: Path) -> None:
    handed: dict[int, set[str]] = {1: set(), 2: set()}
    for _restart in range(2):  # a restart skips the rest of its block, never reuses it
        for instance in (1, 2):
            journal = Journal(tmp_path / f"frontend-{instance}" / "frontend.sqlite3", instance=instance)
            try:
                for _ in range(RRN_BLOCK + 5):
                    rrn = journal.next_rrn()
                    assert rrn not in handed[instance]
                    handed[instance].add(rrn)
            finally:
                journal.close()
    assert not handed[1] & handed[2]
    assert {rrn[5] for rrn in handed[1]} == {"1"} and {rrn[5] for rrn in handed[2]} == {"2"}


def test_a_front_end_alone_keeps_seven_serial_digits_and_a_bad_instance_is_refused(tmp_path: Path) -> None:
    assert format_rrn("26338", 1_234_567) == "263381234567"
    with pytest.raises(ValueError, match="instance must be 1"):
        Journal(tmp_path / "j.sqlite3", instance=10)
