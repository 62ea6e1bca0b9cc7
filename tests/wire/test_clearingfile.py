"""The clearing file format: round trips, and every corruption named by its line number, nothing returned."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wire.clearingfile import (
    CardType,
    ClearingFile,
    ClearingFileError,
    ClearingHeader,
    ClearingRecord,
    Kind,
    Role,
    parse_clearing_file,
    write_clearing_file,
)

HEADER = ClearingHeader(member_id="48021000", business_date="20261204", switch_id="00010000")


def record(seq: int, amount: int = 10_000, kind: Kind = Kind.PURCHASE, net: int = 9_958) -> ClearingRecord:
    return ClearingRecord(
        seq=seq,
        role=Role.ACQUIRER,
        acquirer_id="48021000",
        issuer_id="63050000",
        rrn=f"{seq:012d}",
        stan=f"{seq:06d}",
        local_date="1204",
        terminal_id="10000001",
        merchant_id="898100000000001",
        masked_pan="623000******0007",
        card_type=CardType.DEBIT,
        kind=kind,
        amount=amount,
        currency="156",
        auth_code="000123",
        interchange=35,
        network_fee=3,
        net=net,
    )


records = st.lists(
    st.builds(
        lambda amount, kind, net: (amount, kind, net),
        st.integers(1, 10**10),
        st.sampled_from(Kind),
        st.integers(-(10**10), 10**10),
    ),
    max_size=20,
)


@given(records)
def test_round_trip(rows: list[tuple[int, Kind, int]]) -> None:
    clearing = ClearingFile(
        header=HEADER, records=tuple(record(i, a, k, n) for i, (a, k, n) in enumerate(rows, start=1))
    )
    text = write_clearing_file(clearing)
    assert parse_clearing_file(text) == clearing
    assert text.count("\n") == len(rows) + 2


def _text(n: int = 3) -> list[str]:
    clearing = ClearingFile(header=HEADER, records=tuple(record(i) for i in range(1, n + 1)))
    return write_clearing_file(clearing).splitlines()


@pytest.mark.parametrize(
    ("line_index", "replace", "line", "reason"),
    [
        (0, lambda s: s.replace("H,1", "H,2"), 1, "version"),
        (2, lambda s: s.replace(",10000,", ",1O000,"), 3, "amount"),
        (2, lambda s: s.replace(",D,P,", ",X,P,"), 3, "card type"),
        (3, lambda s: s.replace("623000******0007", "6230001000000007"), 4, "masked"),
        (3, lambda s: s.replace(",000003,", ",00003,"), 4, "STAN"),
        (2, lambda s: s.replace("D,2,", "D,7,"), 3, "seq"),
        (2, lambda s: s.rsplit(",", 1)[0], 3, "fields"),
        (2, lambda s: s[:-3], 5, "trailer net"),
        (4, lambda s: s.replace("T,3,", "T,4,"), 5, "details"),
        (1, lambda s: s + ",extra", 2, "fields"),
        (2, lambda s: "Z" + s[1:], 3, "start with"),
    ],
)
def test_a_corrupt_line_is_named_and_nothing_is_returned(line_index: int, replace, line: int, reason: str) -> None:  # type: ignore[no-untyped-def]
    lines = _text()
    lines[line_index] = replace(lines[line_index])
    with pytest.raises(ClearingFileError, match=reason) as info:
        parse_clearing_file("\n".join(lines) + "\n")
    assert info.value.line == line
    assert "6230001000000007" not in str(info.value)


def test_a_cut_file_and_an_empty_file() -> None:
    lines = _text()
    with pytest.raises(ClearingFileError, match="no trailer") as info:
        parse_clearing_file("\n".join(lines[:-1]))
    assert info.value.line == 5
    with pytest.raises(ClearingFileError, match="empty"):
        parse_clearing_file("")


def test_writer_refuses_a_comma_and_a_gap_in_seq() -> None:
    with pytest.raises(ValueError, match="comma"):
        write_clearing_file(ClearingFile(header=HEADER, records=(dataclasses.replace(record(1), terminal_id="1,2"),)))
    with pytest.raises(ValueError, match="seq"):
        write_clearing_file(ClearingFile(header=HEADER, records=(record(2),)))
