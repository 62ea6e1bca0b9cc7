"""The clearing file the scheme switch writes for each member at end of day (docs/clearing.md). Sans-IO.

A text file of CSV records (``,``-separated, no quoting: no field may hold a comma), UTF-8, ``\\n`` line ends:

    H,<format version 1>,<member id n8>,<business date YYYYMMDD>,<switch id n8>
    D,<seq>,<role A|I>,<acquirer id n8>,<issuer id n8>,<RRN an12>,<STAN n6>,<local date MMDD>,<terminal id>,
      <merchant id>,<masked PAN>,<card type D|C>,<kind P|R>,<amount>,<currency n3>,<auth code>,
      <interchange>,<network fee>,<net>
    T,<detail count>,<purchase count>,<purchase amount>,<refund count>,<refund amount>,<interchange total>,
      <network fee total>,<net total>

(a ``D`` record is one line; it is folded here). Amounts are integers in minor units (fen). ``role`` is the
member's side of the transaction: ``A`` it acquired it, ``I`` it issued the card. ``kind`` ``P`` a purchase (or
pre-auth completion), ``R`` a refund. ``interchange`` is the issuer's fee and ``network fee`` this member's half
of the network fee, both as magnitudes; ``net`` is signed from the member's side: what the switch pays the
member (positive) or the member pays the switch (negative) for this line. The PAN is masked (first 6 / last 4):
the issuer finds the transaction by (acquirer id, RRN). ``seq`` runs 1, 2, 3 … The trailer's counts and
totals must equal the sums of the detail records.

:func:`parse_clearing_file` is all or nothing: it returns every record, or raises :class:`ClearingFileError`
naming the first bad line by number (1-based) and why — never with a line's content (it holds card data).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable
from typing import Final, TypeVar

from wire.errors import AcqsimError

FORMAT_VERSION: Final = "1"
HEADER_TAG: Final = "H"
DETAIL_TAG: Final = "D"
TRAILER_TAG: Final = "T"
_HEADER_FIELDS: Final = 5
_DETAIL_FIELDS: Final = 19
_TRAILER_FIELDS: Final = 9


_E = TypeVar("_E", bound=enum.StrEnum)


class Role(enum.StrEnum):
    ACQUIRER = "A"
    ISSUER = "I"


class CardType(enum.StrEnum):
    DEBIT = "D"
    CREDIT = "C"


class Kind(enum.StrEnum):
    PURCHASE = "P"
    REFUND = "R"


class ClearingFileError(AcqsimError):
    """A clearing file does not follow the format; ``line`` is the 1-based number of the first bad line."""

    def __init__(self, reason: str, *, line: int) -> None:
        super().__init__(f"line {line}: {reason}")
        self.reason = reason
        self.line = line


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ClearingHeader:
    member_id: str
    business_date: str  # YYYYMMDD
    switch_id: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ClearingRecord:
    seq: int
    role: Role
    acquirer_id: str
    issuer_id: str
    rrn: str
    stan: str
    local_date: str
    terminal_id: str
    merchant_id: str
    masked_pan: str
    card_type: CardType
    kind: Kind
    amount: int
    currency: str
    auth_code: str
    interchange: int
    network_fee: int
    net: int


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ClearingTotals:
    details: int
    purchase_count: int
    purchase_amount: int
    refund_count: int
    refund_amount: int
    interchange: int
    network_fee: int
    net: int

    @classmethod
    def of(cls, records: Iterable[ClearingRecord]) -> ClearingTotals:
        rows = list(records)
        purchases = [r.amount for r in rows if r.kind is Kind.PURCHASE]
        refunds = [r.amount for r in rows if r.kind is Kind.REFUND]
        return cls(
            details=len(rows),
            purchase_count=len(purchases),
            purchase_amount=sum(purchases),
            refund_count=len(refunds),
            refund_amount=sum(refunds),
            interchange=sum(r.interchange for r in rows),
            network_fee=sum(r.network_fee for r in rows),
            net=sum(r.net for r in rows),
        )


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ClearingFile:
    header: ClearingHeader
    records: tuple[ClearingRecord, ...]

    @property
    def totals(self) -> ClearingTotals:
        return ClearingTotals.of(self.records)


def _check_text(value: str, what: str) -> str:
    if "," in value or "\n" in value or "\r" in value:
        raise ValueError(f"{what} may not hold a comma or a line break")
    return value


def write_clearing_file(clearing: ClearingFile) -> str:
    """The file's text (records in the order given; their ``seq`` must run 1, 2, 3 …)."""
    header = clearing.header
    lines = [",".join((HEADER_TAG, FORMAT_VERSION, header.member_id, header.business_date, header.switch_id))]
    for expected, r in enumerate(clearing.records, start=1):
        if r.seq != expected:
            raise ValueError(f"record seq {r.seq} where {expected} was due")
        values = (
            DETAIL_TAG,
            str(r.seq),
            r.role.value,
            r.acquirer_id,
            r.issuer_id,
            r.rrn,
            r.stan,
            r.local_date,
            r.terminal_id,
            r.merchant_id,
            r.masked_pan,
            r.card_type.value,
            r.kind.value,
            str(r.amount),
            r.currency,
            r.auth_code,
            str(r.interchange),
            str(r.network_fee),
            str(r.net),
        )
        lines.append(",".join(_check_text(v, "a clearing field") for v in values))
    t = clearing.totals
    totals = (t.details, t.purchase_count, t.purchase_amount, t.refund_count, t.refund_amount)
    lines.append(",".join((TRAILER_TAG, *map(str, (*totals, t.interchange, t.network_fee, t.net)))))
    return "\n".join(lines) + "\n"


def _digits(value: str, length: int, what: str, line: int) -> str:
    if len(value) != length or not value.isdigit():
        raise ClearingFileError(f"{what} must be {length} digits", line=line)
    return value


def _integer(value: str, what: str, line: int, *, signed: bool = False) -> int:
    body = value[1:] if signed and value.startswith("-") else value
    if not body.isdigit() or not body.isascii():
        raise ClearingFileError(f"{what} must be {'an' if signed else 'a non-negative'} integer", line=line)
    return int(value)


def _enum(kind: type[_E], value: str, what: str, line: int) -> _E:
    try:
        return kind(value)
    except ValueError:
        raise ClearingFileError(f"{what} must be one of {', '.join(m.value for m in kind)}", line=line) from None


def _parse_header(parts: list[str], line: int) -> ClearingHeader:
    if len(parts) != _HEADER_FIELDS or parts[0] != HEADER_TAG:
        raise ClearingFileError(f"the first line must be the header ({_HEADER_FIELDS} fields)", line=line)
    if parts[1] != FORMAT_VERSION:
        raise ClearingFileError(f"unsupported format version (this reader takes {FORMAT_VERSION})", line=line)
    return ClearingHeader(
        member_id=_digits(parts[2], 8, "member id", line),
        business_date=_digits(parts[3], 8, "business date", line),
        switch_id=_digits(parts[4], 8, "switch id", line),
    )


def _parse_detail(parts: list[str], line: int, seq: int) -> ClearingRecord:
    if len(parts) != _DETAIL_FIELDS:
        raise ClearingFileError(f"a detail record has {_DETAIL_FIELDS} fields, this one {len(parts)}", line=line)
    if _integer(parts[1], "seq", line) != seq:
        raise ClearingFileError(f"seq must be {seq}", line=line)
    record = ClearingRecord(
        seq=seq,
        role=_enum(Role, parts[2], "role", line),
        acquirer_id=_digits(parts[3], 8, "acquirer id", line),
        issuer_id=_digits(parts[4], 8, "issuer id", line),
        rrn=parts[5],
        stan=_digits(parts[6], 6, "STAN", line),
        local_date=_digits(parts[7], 4, "local date", line),
        terminal_id=parts[8],
        merchant_id=parts[9],
        masked_pan=parts[10],
        card_type=_enum(CardType, parts[11], "card type", line),
        kind=_enum(Kind, parts[12], "kind", line),
        amount=_integer(parts[13], "amount", line),
        currency=_digits(parts[14], 3, "currency", line),
        auth_code=parts[15],
        interchange=_integer(parts[16], "interchange", line),
        network_fee=_integer(parts[17], "network fee", line),
        net=_integer(parts[18], "net", line, signed=True),
    )
    if len(record.rrn) != 12:
        raise ClearingFileError("RRN must be 12 characters", line=line)
    if record.amount <= 0:
        raise ClearingFileError("amount must be positive", line=line)
    if record.masked_pan[6:-4].strip("*") or len(record.masked_pan) < 13:
        raise ClearingFileError("PAN must be masked (first 6, last 4)", line=line)
    return record


def _parse_trailer(parts: list[str], line: int) -> ClearingTotals:
    if len(parts) != _TRAILER_FIELDS:
        raise ClearingFileError(f"the trailer has {_TRAILER_FIELDS} fields, this one {len(parts)}", line=line)
    numbers = [_integer(p, "a trailer total", line, signed=True) for p in parts[1:]]
    return ClearingTotals(
        details=numbers[0],
        purchase_count=numbers[1],
        purchase_amount=numbers[2],
        refund_count=numbers[3],
        refund_amount=numbers[4],
        interchange=numbers[5],
        network_fee=numbers[6],
        net=numbers[7],
    )


def parse_clearing_file(text: str) -> ClearingFile:
    """Every record of a clearing file, or :class:`ClearingFileError` naming the first bad line."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise ClearingFileError("the file is empty", line=1)
    header = _parse_header(lines[0].split(","), 1)
    records: list[ClearingRecord] = []
    for number, raw in enumerate(lines[1:], start=2):
        parts = raw.split(",")
        if parts[0] == TRAILER_TAG:
            if number != len(lines):
                raise ClearingFileError("records after the trailer", line=number + 1)
            stated = _parse_trailer(parts, number)
            actual = ClearingTotals.of(records)
            for field in dataclasses.fields(ClearingTotals):
                if getattr(stated, field.name) != getattr(actual, field.name):
                    raise ClearingFileError(f"trailer {field.name.replace('_', ' ')} does not match", line=number)
            return ClearingFile(header=header, records=tuple(records))
        if parts[0] != DETAIL_TAG:
            raise ClearingFileError("a record must start with D (detail) or T (trailer)", line=number)
        records.append(_parse_detail(parts, number, len(records) + 1))
    raise ClearingFileError("no trailer: the file is cut short", line=len(lines) + 1)
