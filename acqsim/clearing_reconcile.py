"""The acquirer's side of clearing reconciliation (``acqsim clearing reconcile``; docs/clearing.md): the switch's
clearing file against the front-end journal's off-us authorisations, matched by RRN. Read-only.

- a line (role A) whose RRN the journal approved with the same amount: matched;
- the same RRN with another amount: an amount difference;
- a line the journal has no approved row for (none, declined, reversed, voided): cleared without an authorisation;
- an approved off-us purchase, completion or refund (its BIN not among ``on_us``) that no line cleared:
  authorised, not cleared (e.g. the switch's journal lost it, or it is due on a later day).

The issuer's side is reconciled when it loads its file (``core_ledger/clearing.py``).
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from frontend.messages import Kind
from wire.clearingfile import ClearingFile, Role

#: Journal kinds a clearing line stands for.
CLEARED_KINDS: Final = frozenset({Kind.PURCHASE, Kind.PREAUTH_COMPLETION, Kind.PREAUTH_COMPLETION_ADVICE, Kind.REFUND})
APPROVED: Final = "approved"


class JournalUnreadable(Exception):
    """The front-end journal cannot be read."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class AcquirerReconciliation:
    matched: tuple[str, ...] = ()
    amount_diffs: tuple[tuple[str, int, int], ...] = ()  # (RRN, cleared, authorised)
    without_authorisation: tuple[str, ...] = ()
    not_cleared: tuple[str, ...] = ()

    @property
    def clean(self) -> bool:
        return not (self.amount_diffs or self.without_authorisation or self.not_cleared)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class JournalEntry:
    rrn: str
    kind: str
    amount: int
    status: str
    bin: str  # the first 6 PAN digits (what the masked PAN keeps)


def read_journal_entries(path: Path) -> list[JournalEntry]:
    if not path.is_file():
        raise JournalUnreadable(f"no front-end journal at {path}")
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            rows = db.execute("SELECT rrn, kind, amount, status, pan_masked FROM txns").fetchall()
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise JournalUnreadable(f"cannot read the front-end journal {path}: {exc}") from None
    return [JournalEntry(rrn=r[0], kind=r[1], amount=r[2], status=r[3], bin=r[4][:6]) for r in rows]


def reconcile_acquirer(
    clearing: ClearingFile, journal: Iterable[JournalEntry], *, on_us: Iterable[str]
) -> AcquirerReconciliation:
    approved = {e.rrn: e for e in journal if e.status == APPROVED}
    own = tuple(on_us)
    lines = [r for r in clearing.records if r.role is Role.ACQUIRER]
    matched, diffs, without = [], [], []
    for line in lines:
        entry = approved.get(line.rrn)
        if entry is None:
            without.append(line.rrn)
        elif entry.amount != line.amount:
            diffs.append((line.rrn, line.amount, entry.amount))
        else:
            matched.append(line.rrn)
    cleared = {line.rrn for line in lines}
    not_cleared = sorted(
        e.rrn
        for e in approved.values()
        if e.kind in CLEARED_KINDS and not e.bin.startswith(own) and e.rrn not in cleared
    )
    return AcquirerReconciliation(
        matched=tuple(matched),
        amount_diffs=tuple(diffs),
        without_authorisation=tuple(without),
        not_cleared=tuple(not_cleared),
    )
