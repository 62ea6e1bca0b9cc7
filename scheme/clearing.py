"""End of day at the switch: one clearing file per member, with fees, and every party's net position.

Each cleared transaction (an approved purchase, completion or refund that nothing reversed or voided) gives two
lines: role ``A`` in its acquirer's file and role ``I`` in its issuer's file, with the interchange and network
fee of :mod:`scheme.fees` and each side's signed net. A member's position is the sum of its lines' nets
(positive: the switch pays it); the positions and the switch's network-fee income sum to zero
(:attr:`ClearingRun.balanced`). Sans-IO but for :func:`write_run`, which writes the files (each to a temporary
name first, then renamed, so a reader never sees half a file).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from core_ledger.api import LedgerOp
from scheme.core import LegRecord
from scheme.fees import FeeTable
from wire.clearingfile import (
    CardType,
    ClearingFile,
    ClearingHeader,
    ClearingRecord,
    Kind,
    Role,
    write_clearing_file,
)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ClearingRun:
    business_date: str
    switch_id: str
    files: dict[str, ClearingFile]
    switch_income: int
    cleared: tuple[LegRecord, ...]

    @property
    def positions(self) -> dict[str, int]:
        """Member id → its net for the day (positive: the switch pays the member)."""
        return {member: sum(r.net for r in file.records) for member, file in self.files.items()}

    @property
    def balanced(self) -> bool:
        return sum(self.positions.values()) + self.switch_income == 0


def file_name(member_id: str, business_date: str) -> str:
    return f"CLR_{member_id}_{business_date}.csv"


def _line(record: LegRecord, role: Role, seq: int, kind: Kind, fees_net: tuple[int, int, int]) -> ClearingRecord:
    interchange, network, net = fees_net
    assert record.card_type is not None  # only routed records are cleared
    return ClearingRecord(
        seq=seq,
        role=role,
        acquirer_id=record.acquirer_id,
        issuer_id=record.issuer_id,
        rrn=record.rrn,
        stan=record.stan,
        local_date=record.local_date,
        terminal_id=record.terminal_id,
        merchant_id=record.merchant_id,
        masked_pan=record.masked_pan,
        card_type=record.card_type,
        kind=kind,
        amount=record.amount,
        currency=record.currency,
        auth_code=record.auth_code,
        interchange=interchange,
        network_fee=network,
        net=net,
    )


def build_run(
    records: Iterable[LegRecord], *, business_date: str, switch_id: str, members: Iterable[str], fees: FeeTable
) -> ClearingRun:
    """The day's clearing over ``records`` (from :meth:`scheme.journal.SwitchJournal.to_clear`). Every member
    gets a file, an empty one (header and a zero trailer) on a day without transactions."""
    lines: dict[str, list[ClearingRecord]] = defaultdict(list)
    income = 0
    cleared = []
    for record in records:
        kind = Kind.REFUND if record.op is LedgerOp.REFUND else Kind.PURCHASE
        fee = fees.fees(record.amount, record.card_type or CardType.DEBIT, kind)
        income += fee.switch_income
        cleared.append(record)
        for member, role, net, network in (
            (record.acquirer_id, Role.ACQUIRER, fee.acquirer_net, fee.network_acquirer),
            (record.issuer_id, Role.ISSUER, fee.issuer_net, fee.network_issuer),
        ):
            seq = len(lines[member]) + 1
            lines[member].append(_line(record, role, seq, kind, (fee.interchange, network, net)))
    files = {
        member: ClearingFile(
            header=ClearingHeader(member_id=member, business_date=business_date, switch_id=switch_id),
            records=tuple(lines.get(member, ())),
        )
        for member in sorted(set(members) | set(lines))
    }
    return ClearingRun(
        business_date=business_date, switch_id=switch_id, files=files, switch_income=income, cleared=tuple(cleared)
    )


def write_run(run: ClearingRun, directory: Path) -> list[Path]:
    """Write every member's file into ``directory``; returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for member, clearing in run.files.items():
        path = directory / file_name(member, run.business_date)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(write_clearing_file(clearing), encoding="utf-8")
        temporary.replace(path)
        written.append(path)
    return written
