"""``acqsim ledger reconcile``: the front-end journal and the ledger agree, row by row, matched by RRN.

The front-end hands out the RRN (field 37) and the ledger stores it with the transaction, so it names one
business transaction in both stores (before and after the ledger keys on (acquirer, RRN)). Read-only.

Rules (each broken one is a :class:`Difference`):

- an ``approved`` (or ``voided``) journal row has exactly one ledger transaction with its RRN, and it took
  effect (posted, held, completed, cancelled or voided);
- a ``declined`` row has nothing in effect at the ledger;
- a ``reversed`` row's ledger transaction is reversed (or tombstoned), or never took effect; a reversal still
  queued at the front-end is reported as ``reversal pending`` (the ledger has not seen it yet);
- a ``pending`` row (the front-end died before the answer) has nothing in effect at the ledger;
- every ledger transaction that took effect (other than reversals, which name their original) has a journal
  row with its RRN, and no RRN took effect twice;
- every open hold belongs to a transaction whose journal row is an approved pre-authorisation;
- QR rows are matched against the wallet host's store instead (``--wallet``; :mod:`acqsim.reconcile_qr`), and
  the wallet's settlement batches against the ledger's postings (:mod:`acqsim.reconcile_walletsettle`);
- off-us rows (sent to the scheme switch) against the switch's journal (``--switch-journal``;
  :mod:`acqsim.reconcile_scheme`).

    acqsim ledger reconcile [--config FILE | --journal DB --ledger DB|URL] [--wallet DB]
                            [--switch-journal DB [--acquirer-id ID]] [--json]

Exit codes: 0 clean, 1 differences (listed), 2 bad usage or a store that cannot be read, 3 the ledger's
database server (postgresql://) cannot be reached.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sqlite3
import sys
from collections import defaultdict
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Final

from acqkit.config import DEFAULT_ACQUIRER_ID, load_config
from acqkit.datakey import DataKeyError
from acqkit.exitcodes import EXIT_UNREACHABLE, EXIT_USAGE
from acqsim.reconcile_qr import QR_KINDS, queued_wallet_reversals, read_wallet, reconcile_qr
from acqsim.reconcile_scheme import SchemeJournalError, off_us_rrns, read_switch_legs, reconcile_off_us
from acqsim.reconcile_walletsettle import reconcile_wallet_settlement
from core_ledger.api import LedgerOp
from core_ledger.model import Txn, TxnStatus
from core_ledger.setup import open_store
from core_ledger.store import StoreUnavailable
from frontend.journal import journal_data_key, stored_request
from wallet.store import WALLET_DB, WalletStoreError

#: Ledger states in which a transaction has moved money or holds.
IN_EFFECT: Final = frozenset(
    {TxnStatus.POSTED, TxnStatus.HELD, TxnStatus.COMPLETED, TxnStatus.CANCELLED, TxnStatus.VOIDED}
)
#: Ledger states of a transaction that was undone or must never post.
UNDONE: Final = frozenset({TxnStatus.REVERSED, TxnStatus.TOMBSTONE})
#: Ledger operations that move nothing (a balance inquiry "posts" without entries).
NON_POSTING: Final = frozenset({LedgerOp.BALANCE})


class ReconcileError(Exception):
    """A store cannot be read (missing file, not a journal, unreachable database)."""


class ReconcileUnavailable(ReconcileError):
    """The ledger's database server cannot be reached."""


@dataclasses.dataclass(frozen=True, slots=True)
class Difference:
    rrn: str
    problem: str
    journal: str  # the journal row, summarised ("" if none)
    ledger: str  # the ledger transaction(s), summarised ("" if none)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class JournalRow:
    terminal_id: str
    batch: str
    stan: str
    kind: str
    amount: int
    rrn: str
    status: str
    response_code: str | None
    local_date: str = ""

    def summary(self) -> str:
        return (
            f"{self.kind} term={self.terminal_id} batch={self.batch} stan={self.stan} amount={self.amount} "
            f"status={self.status} rc={self.response_code}"
        )


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Reconciliation:
    journal_rows: int
    ledger_txns: int
    matched: int
    pending_reversals: int
    differences: tuple[Difference, ...]

    @property
    def clean(self) -> bool:
        return not self.differences

    def to_json(self) -> dict[str, object]:
        return {
            "journal_rows": self.journal_rows,
            "ledger_txns": self.ledger_txns,
            "matched": self.matched,
            "pending_reversals": self.pending_reversals,
            "clean": self.clean,
            "differences": [dataclasses.asdict(d) for d in self.differences],
        }


def _summary(txn: Txn) -> str:
    return f"{txn.op.value} key={txn.key} amount={txn.amount} status={txn.status.value}"


def read_journal(path: Path) -> tuple[list[JournalRow], set[str]]:
    """The journal's transaction rows, and the RRNs whose reversal is still queued; read-only."""
    if not path.is_file():
        raise ReconcileError(f"no front-end journal at {path}")
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            rows = [
                JournalRow(
                    terminal_id=r[0],
                    batch=r[1],
                    stan=r[2],
                    kind=r[3],
                    amount=r[4],
                    rrn=r[5],
                    status=r[6],
                    response_code=r[7],
                    local_date=r[8],
                )
                for r in db.execute(
                    "SELECT terminal_id, batch, stan, kind, amount, rrn, status, response_code, local_date FROM txns"
                )
            ]
            key = journal_data_key(path)
            queued = set()
            for (text,) in db.execute("SELECT request FROM pending_reversals"):
                request = stored_request(text, key)
                # a reversal names the row it undoes by that row's RRN (its own RRN is new)
                queued.add(request.original.rrn if request.original and request.original.rrn else request.rrn)
        finally:
            db.close()
    except (sqlite3.Error, DataKeyError) as exc:
        raise ReconcileError(f"cannot read the front-end journal {path}: {exc}") from None
    return rows, queued


def reconcile(
    journal: list[JournalRow],
    queued: set[str],
    ledger: list[Txn],
    holds: set[str],
    off_us: AbstractSet[str] = frozenset(),
) -> Reconciliation:
    """Compare ``journal`` rows with ``ledger`` transactions (``holds``: keys owning an open hold); rows whose RRN
    is in ``off_us`` went to the scheme switch and are matched there (:mod:`acqsim.reconcile_scheme`)."""
    by_rrn: dict[str, list[Txn]] = defaultdict(list)
    for txn in ledger:
        if isinstance(txn.op, LedgerOp) and txn.op is not LedgerOp.REVERSAL:
            by_rrn[txn.rrn].append(txn)
    rows = {row.rrn: row for row in journal}
    diffs: list[Difference] = []
    matched = 0

    def differ(rrn: str, problem: str, row: JournalRow | None, txns: list[Txn]) -> None:
        diffs.append(Difference(rrn, problem, row.summary() if row else "", "; ".join(_summary(t) for t in txns)))

    for row in journal:
        if row.kind in QR_KINDS or row.rrn in off_us:
            continue  # matched against the wallet host or the switch (acqsim/reconcile_qr.py, reconcile_scheme.py)
        txns = by_rrn.get(row.rrn, [])
        effective = [t for t in txns if t.status in IN_EFFECT]
        if len(effective) > 1:
            differ(row.rrn, "posted more than once", row, txns)
        elif row.status in ("approved", "voided"):
            if len(effective) == 1:
                matched += 1
            else:
                differ(row.rrn, "approved in the journal, no posting at the ledger", row, txns)
        elif row.status == "reversed":
            if effective and row.rrn in queued:
                differ(row.rrn, "reversal pending: queued at the front-end, still posted at the ledger", row, txns)
            elif effective:
                differ(row.rrn, "reversed in the journal, still posted at the ledger", row, txns)
            else:
                matched += 1
        elif effective:  # declined or pending
            differ(row.rrn, f"{row.status} in the journal, posted at the ledger", row, txns)
        else:
            matched += 1
    for rrn, txns in sorted(by_rrn.items()):
        effective = [t for t in txns if t.status in IN_EFFECT and t.op not in NON_POSTING]
        if effective and rrn not in rows:
            differ(rrn, "posted at the ledger, no journal row", None, txns)
    for txn in ledger:
        if txn.key in holds:
            owner = rows.get(txn.rrn)
            if owner is None or owner.kind != "preauth" or owner.status != "approved":
                differ(txn.rrn, "open hold not backed by an approved pre-authorisation in the journal", owner, [txn])
    return Reconciliation(
        journal_rows=len(journal),
        ledger_txns=len(ledger),
        matched=matched,
        pending_reversals=len(queued),
        differences=tuple(diffs),
    )


def reconcile_stores(
    journal_paths: Path | Sequence[Path],
    ledger_db: str,
    wallet_db: Path | None = None,
    *,
    switch_journal: Path | None = None,
    acquirer_id: str = DEFAULT_ACQUIRER_ID,
) -> Reconciliation:
    """Reconcile the journal (or every journal of a pool of front-ends: their RRNs never collide, so their rows
    are compared as one) with the ledger store; with ``wallet_db``, the journals' QR rows with the wallet host's
    store too; with ``switch_journal``, the off-us rows (``acquirer_id``'s, field 32) with the switch's legs."""
    journals = [journal_paths] if isinstance(journal_paths, Path) else list(journal_paths)
    rows: list[JournalRow] = []
    queued: set[str] = set()
    for path in journals:
        more_rows, more_queued = read_journal(path)
        rows.extend(more_rows)
        queued |= more_queued
    if "://" not in ledger_db and not Path(ledger_db).is_file():
        raise ReconcileError(f"no ledger store at {ledger_db}")
    try:
        store = open_store(ledger_db)
    except StoreUnavailable as exc:
        raise ReconcileUnavailable(f"cannot reach the ledger store: {exc}") from None
    except Exception as exc:  # any backend's failure to open is one line for the user
        raise ReconcileError(f"cannot open the ledger store {ledger_db}: {exc}") from None
    try:
        state = store.load()
    finally:
        store.close()
    txns = list(state.txns.values())
    off_us: set[str] = set()
    if switch_journal is not None:
        try:
            legs = read_switch_legs(switch_journal, acquirer_id)
        except SchemeJournalError as exc:
            raise ReconcileError(str(exc)) from None
        at_ledger = {t.rrn for t in txns if isinstance(t.op, LedgerOp) and t.status in IN_EFFECT}
        off_us = off_us_rrns(rows, legs, at_ledger)
    result = reconcile(rows, queued, txns, set(state.holds), off_us)
    if switch_journal is not None:
        matched, off_us_problems = reconcile_off_us(rows, legs, queued, at_ledger)
        result = dataclasses.replace(
            result,
            matched=result.matched + matched,
            differences=result.differences + tuple(Difference(*problem) for problem in off_us_problems),
        )
    if wallet_db is None:
        return result
    try:
        book = read_wallet(wallet_db)
        wallet_queued = set().union(*(queued_wallet_reversals(path) for path in journals))
        matched, problems = reconcile_qr(rows, book, wallet_queued)
    except (WalletStoreError, sqlite3.Error) as exc:
        raise ReconcileError(f"cannot read the wallet store {wallet_db}: {exc}") from None
    found = tuple(
        Difference(rrn, problem, row.summary() if isinstance(row, JournalRow) else "", "")
        for rrn, problem, row in problems
    )
    batches_matched, _waiting, batch_diffs = reconcile_wallet_settlement(book, state.txns.values())
    found += tuple(Difference(d.key, d.problem, d.wallet, d.ledger) for d in batch_diffs)
    matched += batches_matched
    return dataclasses.replace(result, matched=result.matched + matched, differences=result.differences + found)


def render(result: Reconciliation) -> str:
    lines = [
        f"journal rows {result.journal_rows}, ledger transactions {result.ledger_txns}, matched {result.matched}, "
        f"reversals queued {result.pending_reversals}"
    ]
    for d in result.differences:
        lines.append(f"DIFFERS rrn={d.rrn}: {d.problem}")
        if d.journal:
            lines.append(f"    journal: {d.journal}")
        if d.ledger:
            lines.append(f"    ledger:  {d.ledger}")
    lines.append("reconcile: clean" if result.clean else f"reconcile: {len(result.differences)} differences")
    return "\n".join(lines)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="acqsim TOML configuration naming both stores (default: built-in)")
    parser.add_argument(
        "--journal",
        type=Path,
        action="append",
        help="the front-end journal, a SQLite file; repeat for each front-end of a pool (default: the"
        " configuration's, every instance's)",
    )
    parser.add_argument(
        "--ledger", help="the ledger store, a SQLite file or postgresql:// URL (default: the configuration's)"
    )
    parser.add_argument(
        "--wallet",
        type=Path,
        help="the wallet host's store: check the QR rows too (default: "
        "the data directory's wallet.sqlite3 when it exists, with --config)",
    )
    parser.add_argument(
        "--switch-journal",
        type=Path,
        help="the scheme switch's journal: match the off-us rows (sent to the switch) against its legs of this"
        " acquirer instead of the ledger (default: none; off-us rows then show as missing at the ledger)",
    )
    parser.add_argument(
        "--acquirer-id", help="with --switch-journal: the acquirer's field 32 (default: the configuration's)"
    )
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")


def run(args: argparse.Namespace) -> int:
    if (args.journal is None) != (args.ledger is None):
        print("acqsim ledger reconcile: give both --journal and --ledger, or neither (--config)", file=sys.stderr)
        return EXIT_USAGE
    if args.journal is None:
        config = load_config(args.config)
        instances = config.frontend.instances
        journal = [Path(config.frontend_db(k if instances > 1 else None)) for k in range(1, instances + 1)]
        ledger = str(config.store_path(config.ledger.db))
        default_wallet = config.data_dir / WALLET_DB
        wallet = args.wallet or (default_wallet if default_wallet.is_file() else None)
    else:
        journal, ledger, wallet = args.journal, args.ledger, args.wallet
    acquirer_id = args.acquirer_id or load_config(args.config).acquirer_id
    try:
        result = reconcile_stores(journal, ledger, wallet, switch_journal=args.switch_journal, acquirer_id=acquirer_id)
    except ReconcileError as exc:
        print(f"acqsim ledger reconcile: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE if isinstance(exc, ReconcileUnavailable) else EXIT_USAGE
    print(json.dumps(result.to_json()) if args.json else render(result))
    return 0 if result.clean else 1
