"""Off-us rows of the front-end journal against the scheme switch's journal (part of ``acqsim ledger reconcile``).

An off-us card's money moves at its issuer, reached through the switch, so its journal rows have nothing at the
acquirer's ledger: they are matched with the switch's legs of this acquirer (field 32) by the RRN (field 37),
which the front-end hands out and the switch keys its legs by (with the MTI class):

- an ``approved`` row's leg is approved and still in effect at the switch (not reversed or voided there);
  a ``voided`` row's leg is approved (its void is a row and a leg of its own);
- a ``reversed``, ``declined`` or ``pending`` row's leg is not in effect at the switch (declined there, or
  undone by an approved reversal); a reversal still queued at the front-end is reported as pending;
- every leg approved and in effect at the switch has a journal row, and no row is both posted at the ledger and
  sent to the switch.

A row is off-us when the switch has a leg for its RRN (other than a reversal's) and the ledger has nothing for
it. Clearing (what the switch cleared against the journal) is ``acqsim clearing reconcile``. Read-only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import Final, Protocol

from core_ledger.api import LedgerOp
from scheme.core import LegRecord
from scheme.journal import STATUS_REVERSED, SwitchJournal

#: Operations whose approval moves or holds money (a balance inquiry leaves nothing to reconcile).
_NOT_MOVING: Final = frozenset({LedgerOp.BALANCE, LedgerOp.REVERSAL})


class Row(Protocol):
    """A journal row, as :mod:`acqsim.reconcile` reads it."""

    @property
    def rrn(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def kind(self) -> str: ...

    def summary(self) -> str: ...


class SchemeJournalError(Exception):
    """The switch's journal cannot be read."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SwitchLeg:
    record: LegRecord
    status: str  # the switch journal's: open / reversed / voided

    @property
    def in_effect(self) -> bool:
        return self.record.approved and self.status != STATUS_REVERSED

    def summary(self) -> str:
        r = self.record
        stand_in = " stand-in" if r.stand_in else ""
        return (
            f"switch {r.mti} {r.op.value} iss={r.issuer_id or '-'} amount={r.amount} rc={r.response_code.value}"
            f"{stand_in} status={self.status}"
        )


def read_switch_legs(path: Path, acquirer_id: str) -> dict[str, SwitchLeg]:
    """The switch's legs of ``acquirer_id`` by RRN (reversal legs left out: they name their original's RRN)."""
    if not path.is_file():
        raise SchemeJournalError(f"no switch journal at {path}")
    try:
        journal = SwitchJournal(path)
    except Exception as exc:  # not a switch journal, unreadable: one line for the user
        raise SchemeJournalError(f"cannot read the switch journal {path}: {exc}") from None
    try:
        legs = journal.legs_of(acquirer_id)
    finally:
        journal.close()
    return {
        record.rrn: SwitchLeg(record=record, status=status)
        for record, status in legs
        if record.op is not LedgerOp.REVERSAL
    }


def off_us_rrns(rows: Iterable[Row], legs: dict[str, SwitchLeg], posted_at_ledger: set[str]) -> set[str]:
    """The RRNs of ``rows`` that went to the switch and not to the ledger."""
    return {row.rrn for row in rows if row.rrn in legs and row.rrn not in posted_at_ledger}


def reconcile_off_us(
    rows: Iterable[Row], legs: dict[str, SwitchLeg], queued: set[str], posted_at_ledger: set[str]
) -> tuple[int, list[tuple[str, str, str, str]]]:
    """(rows matched, [(RRN, problem, journal summary, switch summary)]) for the off-us rows and legs."""
    matched = 0
    problems: list[tuple[str, str, str, str]] = []
    seen: set[str] = set()
    for row in rows:
        leg = legs.get(row.rrn)
        if leg is None:
            continue
        seen.add(row.rrn)
        if row.rrn in posted_at_ledger:
            if leg.in_effect:
                problems.append(
                    (row.rrn, "posted at the ledger and approved at the switch", row.summary(), leg.summary())
                )
            continue
        if row.status == "approved" and not (leg.in_effect and leg.status == "open"):
            problems.append(
                (row.rrn, "approved in the journal, not in effect at the switch", row.summary(), leg.summary())
            )
        elif row.status == "voided" and not leg.record.approved:
            problems.append(
                (row.rrn, "voided in the journal, never approved at the switch", row.summary(), leg.summary())
            )
        elif row.status == "reversed" and leg.in_effect:
            problem = (
                "reversal pending: queued at the front-end, still approved at the switch"
                if row.rrn in queued
                else "reversed in the journal, still approved at the switch"
            )
            problems.append((row.rrn, problem, row.summary(), leg.summary()))
        elif row.status in ("declined", "pending") and leg.in_effect:
            problems.append(
                (row.rrn, f"{row.status} in the journal, approved at the switch", row.summary(), leg.summary())
            )
        else:
            matched += 1
    for rrn, leg in sorted(legs.items()):
        if rrn not in seen and leg.in_effect and leg.record.op not in _NOT_MOVING:
            problems.append((rrn, "approved at the switch, no journal row", "", leg.summary()))
    return matched, problems
