"""The switch's journal (SQLite): one row per request and its answer — what clearing is made from.

A row's key is (acquirer id 32, RRN 37, MTI class): a repeated request finds its first answer and is never
forwarded or cleared twice. The server writes legs by group commit (:meth:`SwitchJournal.record_many`: the legs
that arrive during one fsync share it). An approved reversal, void or completion void marks its original (the row
with the same RRN in another class, else the row of that terminal, STAN and local date that field 90 names)
``reversed`` / ``voided``, in the same transaction as its own row; a marked row is not cleared. Rows hold the
masked PAN only. Every method blocks: the shell runs them in a worker thread.

Lookups on the hot path (:meth:`SwitchJournal.find`, :meth:`SwitchJournal.original_stood_in`) use a second, read-only
connection under their own lock: in WAL mode a reader sees the last committed transaction and never waits for the
writer, so a repeat check no longer queues behind a group commit's fsync. A lookup made after a commit returns sees
it (WAL readers start from the latest commit); the writer still checks keys itself (INSERT OR IGNORE), so a lookup
racing an uncommitted leg can at worst forward a repeat that the commit then refuses — as before.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from core_ledger.api import LedgerOp
from scheme.core import LegRecord
from wire.clearingfile import CardType
from wire.constants import ResponseCode

STATUS_OPEN: Final = "open"
STATUS_REVERSED: Final = "reversed"
STATUS_VOIDED: Final = "voided"
#: The operations clearing carries: purchases and completions (debits), refunds (credits).
CLEARED_OPS: Final = frozenset({LedgerOp.PURCHASE, LedgerOp.PREAUTH_COMPLETION, LedgerOp.REFUND})

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS legs (
    acquirer_id TEXT NOT NULL, rrn TEXT NOT NULL, msg_class TEXT NOT NULL, mti TEXT NOT NULL, op TEXT NOT NULL,
    issuer_id TEXT NOT NULL, masked_pan TEXT NOT NULL, card_type TEXT, amount INTEGER NOT NULL,
    currency TEXT NOT NULL, stan TEXT NOT NULL, local_date TEXT NOT NULL, terminal_id TEXT NOT NULL,
    merchant_id TEXT NOT NULL, response_code TEXT NOT NULL, auth_code TEXT NOT NULL, stand_in INTEGER NOT NULL,
    business_date TEXT NOT NULL, original_stan TEXT NOT NULL, original_date TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'open', cleared_in TEXT NOT NULL DEFAULT '', pan_fingerprint TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (acquirer_id, rrn, msg_class)
);
CREATE INDEX IF NOT EXISTS legs_by_ref ON legs (acquirer_id, terminal_id, stan, local_date);
CREATE INDEX IF NOT EXISTS legs_by_day ON legs (business_date);
CREATE TABLE IF NOT EXISTS issuer_reversals (
    acquirer_id TEXT NOT NULL, rrn TEXT NOT NULL, msg_class TEXT NOT NULL, issuer_id TEXT NOT NULL,
    sealed TEXT NOT NULL, tries INTEGER NOT NULL DEFAULT 0, state TEXT NOT NULL DEFAULT 'pending',
    PRIMARY KEY (acquirer_id, rrn, msg_class)
);
"""
#: States of a reversal the switch owes an issuer.
REVERSAL_PENDING: Final = "pending"
REVERSAL_DONE: Final = "done"
REVERSAL_GIVEN_UP: Final = "given-up"
_COLUMNS: Final = (
    "acquirer_id, rrn, msg_class, mti, op, issuer_id, masked_pan, card_type, amount, currency, stan, local_date, "
    "terminal_id, merchant_id, response_code, auth_code, stand_in, business_date, original_stan, original_date, "
    "pan_fingerprint"
)
_UNDO_STATUS: Final = {
    LedgerOp.REVERSAL: STATUS_REVERSED,
    LedgerOp.VOID: STATUS_VOIDED,
    LedgerOp.PREAUTH_COMPLETION_VOID: STATUS_VOIDED,
}


def _row(record: LegRecord) -> tuple[object, ...]:
    return (
        record.acquirer_id,
        record.rrn,
        record.msg_class,
        record.mti,
        record.op.value,
        record.issuer_id,
        record.masked_pan,
        record.card_type.value if record.card_type else None,
        record.amount,
        record.currency,
        record.stan,
        record.local_date,
        record.terminal_id,
        record.merchant_id,
        record.response_code.value,
        record.auth_code,
        int(record.stand_in),
        record.business_date,
        record.original_stan,
        record.original_date,
        record.pan_fingerprint,
    )


def _record(row: sqlite3.Row) -> LegRecord:
    return LegRecord(
        acquirer_id=row["acquirer_id"],
        rrn=row["rrn"],
        mti=row["mti"],
        op=LedgerOp(row["op"]),
        issuer_id=row["issuer_id"],
        masked_pan=row["masked_pan"],
        card_type=CardType(row["card_type"]) if row["card_type"] else None,
        amount=row["amount"],
        currency=row["currency"],
        stan=row["stan"],
        local_date=row["local_date"],
        terminal_id=row["terminal_id"],
        merchant_id=row["merchant_id"],
        response_code=ResponseCode(row["response_code"]),
        auth_code=row["auth_code"],
        stand_in=bool(row["stand_in"]),
        business_date=row["business_date"],
        original_stan=row["original_stan"],
        original_date=row["original_date"],
        pan_fingerprint=row["pan_fingerprint"],
    )


class SwitchJournal:
    def __init__(self, path: Path | str) -> None:
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        columns = {str(row[0]) for row in self._db.execute("SELECT name FROM pragma_table_info('legs')")}
        self._db.executescript(_SCHEMA)
        if columns and "pan_fingerprint" not in columns:  # a journal from before repeats were compared
            self._db.execute("ALTER TABLE legs ADD COLUMN pan_fingerprint TEXT NOT NULL DEFAULT ''")
        # Opened after the schema exists; autocommit, so each SELECT reads the latest commit.
        self._reader = sqlite3.connect(
            f"{Path(path).resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False, isolation_level=None
        )
        self._reader.row_factory = sqlite3.Row
        self._read_lock = threading.Lock()

    def close(self) -> None:
        self._reader.close()
        self._db.close()

    def find(self, acquirer_id: str, rrn: str, msg_class: str) -> LegRecord | None:
        with self._read_lock:
            row = self._reader.execute(
                "SELECT * FROM legs WHERE acquirer_id = ? AND rrn = ? AND msg_class = ?", (acquirer_id, rrn, msg_class)
            ).fetchone()
        return _record(row) if row is not None else None

    def _original(self, record: LegRecord, db: sqlite3.Connection | None = None) -> sqlite3.Row | None:
        db = db or self._db
        if record.op is LedgerOp.REVERSAL:
            same = db.execute(
                "SELECT * FROM legs WHERE acquirer_id = ? AND rrn = ? AND msg_class != ?",
                (record.acquirer_id, record.rrn, record.msg_class),
            ).fetchone()
            if same is not None:
                return same  # type: ignore[no-any-return]
        if not record.original_stan:
            return None
        return db.execute(  # type: ignore[no-any-return]
            "SELECT * FROM legs WHERE acquirer_id = ? AND terminal_id = ? AND stan = ? AND local_date = ? "
            "AND msg_class != '04' ORDER BY rowid DESC",
            (record.acquirer_id, record.terminal_id, record.original_stan, record.original_date),
        ).fetchone()

    def original_stood_in(self, record: LegRecord) -> bool:
        """Whether the original that ``record`` undoes was approved by the switch standing in."""
        with self._read_lock:
            original = self._original(record, self._reader)
        return original is not None and bool(original["stand_in"]) and original["response_code"] == "00"

    def record(self, record: LegRecord, *, reversal: tuple[str, str] | None = None) -> bool:
        """Keep ``record`` (and mark the original it undoes); ``False`` if its key was already there.

        ``reversal`` (issuer id, sealed request) queues, in the same transaction, the reversal the switch owes
        the issuer because the issuer may have carried out a request whose answer never came."""
        return self.record_many([(record, reversal)])[0]

    def record_many(self, items: list[tuple[LegRecord, tuple[str, str] | None]]) -> list[bool]:
        """:meth:`record` for many legs in ONE transaction (one fsync): the server's group commit."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                inserted = [self._record(record, reversal) for record, reversal in items]
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return inserted

    def _record(self, record: LegRecord, reversal: tuple[str, str] | None) -> bool:
        placeholders = ", ".join("?" * len(_COLUMNS.split(",")))
        cursor = self._db.execute(
            f"INSERT OR IGNORE INTO legs ({_COLUMNS}) VALUES ({placeholders})",  # noqa: S608 - constants
            _row(record),
        )
        inserted = cursor.rowcount == 1
        status = _UNDO_STATUS.get(record.op)
        if inserted and record.approved and status is not None:
            original = self._original(record)
            if original is not None:
                self._db.execute(
                    "UPDATE legs SET status = ? WHERE acquirer_id = ? AND rrn = ? AND msg_class = ?",
                    (status, original["acquirer_id"], original["rrn"], original["msg_class"]),
                )
        if inserted and reversal is not None:
            self._db.execute(
                "INSERT OR IGNORE INTO issuer_reversals (acquirer_id, rrn, msg_class, issuer_id, sealed) "
                "VALUES (?, ?, ?, ?, ?)",
                (record.acquirer_id, record.rrn, record.msg_class, *reversal),
            )
        return inserted

    def to_clear(self, business_date: str) -> list[LegRecord]:
        """Approved purchases, completions and refunds of ``business_date`` (and earlier ones not cleared yet)
        that nothing undid, in the order they were journalled."""
        ops = tuple(op.value for op in CLEARED_OPS)
        with self._lock:
            rows = self._db.execute(
                f"SELECT * FROM legs WHERE business_date <= ? AND response_code = '00' AND status = 'open' "  # noqa: S608
                f"AND cleared_in = '' AND op IN ({', '.join('?' * len(ops))}) ORDER BY rowid",
                (business_date, *ops),
            ).fetchall()
        return [_record(row) for row in rows]

    def mark_cleared(self, records: Iterable[LegRecord], file_id: str) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "UPDATE legs SET cleared_in = ? WHERE acquirer_id = ? AND rrn = ? AND msg_class = ?",
                [(file_id, r.acquirer_id, r.rrn, r.msg_class) for r in records],
            )
            self._db.execute("COMMIT")

    def all(self, business_date: str | None = None) -> list[LegRecord]:
        with self._lock:
            if business_date is None:
                rows = self._db.execute("SELECT * FROM legs ORDER BY rowid").fetchall()
            else:
                rows = self._db.execute(
                    "SELECT * FROM legs WHERE business_date = ? ORDER BY rowid", (business_date,)
                ).fetchall()
        return [_record(row) for row in rows]

    def legs_of(self, acquirer_id: str) -> list[tuple[LegRecord, str]]:
        """Every leg an acquirer sent, with its status (``open``, or :data:`STATUS_REVERSED` / :data:`STATUS_VOIDED`
        when an approved reversal or void undid it), in journal order: what the acquirer reconciles against."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM legs WHERE acquirer_id = ? ORDER BY rowid", (acquirer_id,)
            ).fetchall()
        return [(_record(row), str(row["status"])) for row in rows]

    def pending_reversals(self) -> list[tuple[tuple[str, str, str], str, str, int]]:
        """((acquirer, RRN, class), issuer id, sealed request, tries) of every reversal still owed, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM issuer_reversals WHERE state = ? ORDER BY rowid", (REVERSAL_PENDING,)
            ).fetchall()
        return [((r["acquirer_id"], r["rrn"], r["msg_class"]), r["issuer_id"], r["sealed"], r["tries"]) for r in rows]

    def reversal_outcome(self, key: tuple[str, str, str], *, done: bool, max_tries: int) -> None:
        """Record a try: ``done`` ends it (and drops the sealed request); else it is tried again until
        ``max_tries``, then kept as given up (for people to look at), its sealed request dropped too."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "UPDATE issuer_reversals SET tries = tries + 1 WHERE acquirer_id = ? AND rrn = ? AND msg_class = ?",
                key,
            )
            self._db.execute(
                "UPDATE issuer_reversals SET state = CASE WHEN ? THEN ? WHEN tries >= ? THEN ? ELSE state END, "
                "sealed = CASE WHEN ? OR tries >= ? THEN '' ELSE sealed END "
                "WHERE acquirer_id = ? AND rrn = ? AND msg_class = ?",
                (done, REVERSAL_DONE, max_tries, REVERSAL_GIVEN_UP, done, max_tries, *key),
            )
            self._db.execute("COMMIT")

    def reversal_states(self) -> dict[tuple[str, str, str], str]:
        with self._lock:
            rows = self._db.execute("SELECT acquirer_id, rrn, msg_class, state FROM issuer_reversals").fetchall()
        return {(r["acquirer_id"], r["rrn"], r["msg_class"]): r["state"] for r in rows}
