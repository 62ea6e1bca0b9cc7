"""The front-end's durable journal (SQLite, WAL): sessions, every transaction, pending reversals.

Writes are blocking: the server runs them in batches (:meth:`Journal.run_batch`, one transaction and one
fsync per batch) in a worker thread. What every transaction reads first — the terminal's session — is also held
in memory (written through, loaded at open), so that read needs neither the disk nor a thread. The PIN tries
this instance has seen are in memory only: the card's ledger keeps the durable count for the pool. RRNs are
handed out from a block of ``RRN_BLOCK`` reserved durably at a time, as a database sequence with a cache does:
unique across restarts, with a gap after one.

The journal keeps PANs masked. Where it must hold a card number a while — a row's ledger request until its
answer is journaled, a store-and-forward reversal until the ledger takes it — the request is sealed under the
data key (AES-GCM, ``acqkit/datakey.py``) and dropped when done. PIN-try counters are keyed by a keyed
fingerprint of the PAN (HMAC-SHA-256 under the data key), which cannot be reversed without the key.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

from acqkit.datakey import KEY_FILE as DATA_KEY_FILE
from acqkit.datakey import DataKey, DataKeyError
from core_ledger.api import LedgerOp, LedgerRequest, OriginalRef
from frontend.effects import CounterVerdict
from frontend.notices import MethodTotals, method_of
from frontend.records import FIRST_BATCH, JournalTxn, Session, next_batch_number
from wire.fields import CardTotals, SettlementTotals
from wire.masking import mask_pan

log = logging.getLogger("acqsim.frontend")

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS sessions (terminal_id TEXT PRIMARY KEY, pik TEXT NOT NULL, mak TEXT NOT NULL,
    batch TEXT NOT NULL, signed_on_at REAL NOT NULL, tdk TEXT);
CREATE TABLE IF NOT EXISTS txns (terminal_id TEXT NOT NULL, batch TEXT NOT NULL, stan TEXT NOT NULL,
    mti TEXT NOT NULL, kind TEXT NOT NULL, pan_masked TEXT NOT NULL, amount INTEGER NOT NULL,
    local_date TEXT NOT NULL, local_time TEXT NOT NULL, rrn TEXT NOT NULL, auth_code TEXT,
    response_code TEXT, status TEXT NOT NULL, original_stan TEXT, created_at REAL NOT NULL, pending_request TEXT,
    PRIMARY KEY (terminal_id, batch, stan, mti));
CREATE TABLE IF NOT EXISTS pending_reversals (id INTEGER PRIMARY KEY AUTOINCREMENT, request TEXT NOT NULL,
    tries INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL, state TEXT NOT NULL DEFAULT 'pending',
    last_code TEXT);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS wallet_reversals (id INTEGER PRIMARY KEY AUTOINCREMENT, message TEXT NOT NULL,
    tries INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS merchant_notices (id INTEGER PRIMARY KEY AUTOINCREMENT, message TEXT NOT NULL,
    tries INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS replay_windows (name TEXT PRIMARY KEY, high INTEGER NOT NULL, seen INTEGER NOT NULL);
"""

#: Transaction kinds that count as debits / credits in settlement totals (PROTOCOL.md §3). A voided purchase
#: still counts as a debit, and its void as a credit; reversed transactions count nowhere.
DEBIT_KINDS: Final = ("purchase", "preauth_completion", "preauth_completion_advice", "qr_sale")
CREDIT_KINDS: Final = ("void", "refund", "preauth_completion_void", "qr_void", "qr_refund")
#: A store-and-forward reversal is given up (a dead letter, for an operator) after this many refused tries.
MAX_REVERSAL_TRIES: Final = 10
#: States of a store-and-forward reversal: still owed to the ledger, or given up and waiting for an operator.
REVERSAL_PENDING: Final = "pending"
REVERSAL_DEAD: Final = "dead"
#: RRNs reserved durably at a time; a restart skips what was left of the block.
RRN_BLOCK: Final = 1000
#: RRN serial digits after the YYDDD prefix (field 37 is 12 characters).
RRN_SERIAL_MODULUS: Final = 10_000_000
#: Front-ends of a pool (``acqsim frontend --instance K``, ``acqsim up --frontends N``) are numbered 1–9: the
#: first serial digit of their RRNs is the instance, so the ledger's idempotency key (acquirer 32, RRN 37) of
#: two instances can never collide; each then has 1,000,000 RRNs a day (six digits) before its serial wraps.
MAX_INSTANCES: Final = 9
INSTANCE_SERIAL_MODULUS: Final = 1_000_000
#: Cards whose wrong PINs one member keeps in memory (about 100 bytes each); past it the oldest day is forgotten.
PIN_FAILURE_MEMORY: Final = 100_000


def format_rrn(day: str, serial: int, instance: int | None = None) -> str:
    """Field 37: ``day`` (YYDDD) then the serial, seven digits — or, for pool instance ``instance``, the
    instance digit and six digits."""
    if instance is None:
        return f"{day}{serial % RRN_SERIAL_MODULUS:07d}"
    if not 1 <= instance <= MAX_INSTANCES:
        raise ValueError(f"front-end instance must be 1–{MAX_INSTANCES}, not {instance}")
    return f"{day}{instance}{serial % INSTANCE_SERIAL_MODULUS:06d}"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ReversalRow:
    """A store-and-forward reversal as the journal commands show it: the card masked."""

    id: int
    terminal_id: str
    stan: str
    rrn: str
    pan_masked: str
    amount: int
    tries: int
    last_code: str | None
    created_at: float


#: The columns that make a :class:`JournalTxn`, in its field order.
_TXN_COLUMNS: Final = (
    "terminal_id, batch, stan, mti, kind, amount, local_date, local_time, rrn, auth_code, response_code, status"
)


#: The fields a journaled ledger request keeps, in order (what ``dataclasses.asdict`` would give, without its
#: recursive deep copy: about 30 µs a request, a tenth of the journal's work per purchase).
_REQUEST_FIELDS: Final = tuple(field.name for field in dataclasses.fields(LedgerRequest))
_ORIGINAL_FIELDS: Final = tuple(field.name for field in dataclasses.fields(OriginalRef))


def request_to_json(request: LedgerRequest) -> str:
    """``request`` as JSON: its fields (all plain values but ``op``, an enum, and ``original``, a dataclass)."""
    raw = {name: getattr(request, name) for name in _REQUEST_FIELDS}
    raw["op"] = request.op.value
    if request.original is not None:
        raw["original"] = {name: getattr(request.original, name) for name in _ORIGINAL_FIELDS}
    return json.dumps(raw)


def request_from_json(text: str) -> LedgerRequest:
    raw: dict[str, Any] = json.loads(text)
    raw["op"] = LedgerOp(raw["op"])
    if raw.get("original"):
        raw["original"] = OriginalRef(**raw["original"])
    return LedgerRequest(**raw)


def stored_request(text: str, data_key: DataKey | None) -> LedgerRequest:
    """A request as the journal stores it: sealed under the data key (or, written by an acqsim before
    sealing, plain JSON). Raises ``DataKeyError`` for a sealed one without the key that sealed it."""
    if text.startswith("{"):
        return request_from_json(text)
    if data_key is None:
        raise DataKeyError("the journal's requests are sealed: its data key is needed")
    return request_from_json(data_key.open(text))


def journal_data_key(path: Path) -> DataKey | None:
    """The data key kept beside the journal at ``path``, if there is one (never created: for readers)."""
    folder = path.parent / "keys"
    return DataKey.load_or_create(folder) if (folder / DATA_KEY_FILE).is_file() else None


class Journal:
    def __init__(self, path: str | Path, *, data_key: DataKey | None = None, instance: int | None = None) -> None:
        """Open (or create) the journal at ``path``; ``data_key`` defaults to the one kept beside it
        (``keys/data.key`` in the journal's folder), or a key of this process alone for ``:memory:``.
        ``instance``: this front-end's number in a pool (1–9), put in every RRN (:func:`format_rrn`)."""
        format_rrn("00000", 0, instance)  # refuses a bad instance before anything is opened
        self.instance = instance
        in_memory = str(path) == ":memory:"
        if not in_memory:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        if data_key is None:
            data_key = DataKey.ephemeral() if in_memory else DataKey.load_or_create(Path(path).parent / "keys")
        self._data_key = data_key
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._upgrade()
        self._lock = threading.RLock()
        self._sessions = {
            row[0]: Session(terminal_id=row[0], pik=row[1], mak=row[2], batch=row[3], tdk=row[4])
            for row in self._db.execute("SELECT terminal_id, pik, mak, batch, tdk FROM sessions")
        }
        #: Wrong PINs seen by this instance, by (card, day), in memory only: with the reservations they bound the
        #: DCs this instance sends; the card's ledger keeps the durable count for the pool (docs/frontend.md).
        self._pin_failures: dict[tuple[str, str], int] = {}
        #: The two newest days wrong PINs were counted for (older days are dropped: ``_make_room_for_pin_failure``).
        self._pin_failure_days: tuple[str, str] = ("", "")
        self._rrn_next = self._rrn_limit = 0
        #: PIN tries reserved for verifications in flight, by (card, day): see :meth:`reserve_pin_try`.
        self._pin_in_flight: dict[tuple[str, str], int] = {}
        #: Memory updates of the batch call in progress (``None`` outside a batch): see :meth:`run_batch`.
        self._after_commit: list[Callable[[], object]] | None = None

    def _upgrade(self) -> None:
        """Bring a journal written by an older acqsim up to this schema (columns added, nothing lost)."""
        if "tdk" not in {row[1] for row in self._db.execute("PRAGMA table_info(sessions)")}:
            self._db.execute("ALTER TABLE sessions ADD COLUMN tdk TEXT")
        if "pending_request" not in {row[1] for row in self._db.execute("PRAGMA table_info(txns)")}:
            self._db.execute("ALTER TABLE txns ADD COLUMN pending_request TEXT")
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(pending_reversals)")}
        if "state" not in columns:
            self._db.execute("ALTER TABLE pending_reversals ADD COLUMN state TEXT NOT NULL DEFAULT 'pending'")
        if "last_code" not in columns:
            self._db.execute("ALTER TABLE pending_reversals ADD COLUMN last_code TEXT")

    def _seal(self, request: LedgerRequest) -> str:
        return self._data_key.seal(request_to_json(request))

    def _unseal(self, text: str) -> LedgerRequest:
        return stored_request(text, self._data_key)

    def run_batch(self, calls: list[Callable[[Journal], Any]]) -> Sequence[Any]:
        """Run ``calls`` in order in ONE transaction (one fsync); each one's result, or the exception it raised.

        What the calls change in memory (sessions, PIN counters) takes effect only once the batch is committed:
        a failed commit leaves memory as the disk is."""
        results: list[Any] = []
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            committed: list[Callable[[], object]] = []
            try:
                for call in calls:
                    self._after_commit = []
                    try:
                        results.append(call(self))
                        committed += self._after_commit
                    except Exception as exc:  # goes back to that call's caller, not to the batch
                        results.append(exc)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                # The RRN block may have been reserved by this batch: reserve afresh (RRNs handed out here were
                # never journaled, nor sent: their callers learn that the batch failed).
                self._rrn_next = self._rrn_limit = 0
                raise
            finally:
                self._after_commit = None
            for update in committed:
                update()
        return results

    def _remember(self, update: Callable[[], object]) -> None:
        """Change memory now, or — inside a batch — once the batch has committed."""
        if self._after_commit is None:
            update()
        else:
            self._after_commit.append(update)

    def close(self) -> None:
        self._db.close()

    def _one(self, sql: str, params: tuple[Any, ...]) -> Any:
        with self._lock:
            return self._db.execute(sql, params).fetchone()

    def _exec(self, sql: str, params: tuple[Any, ...]) -> None:
        with self._lock:
            self._db.execute(sql, params)

    # sessions
    def session(self, terminal_id: str) -> Session | None:
        """From memory: no disk, no thread."""
        return self._sessions.get(terminal_id)

    def save_session(self, session: Session) -> None:
        self._exec(
            "INSERT OR REPLACE INTO sessions (terminal_id, pik, mak, batch, signed_on_at, tdk)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (session.terminal_id, session.pik, session.mak, session.batch, time.time(), session.tdk),
        )
        self._remember(functools.partial(self._sessions.__setitem__, session.terminal_id, session))

    def drop_session(self, terminal_id: str) -> None:
        self._exec("DELETE FROM sessions WHERE terminal_id = ?", (terminal_id,))
        self._remember(functools.partial(self._sessions.pop, terminal_id, None))

    def next_batch(self, terminal_id: str) -> str:
        session = self._sessions.get(terminal_id)
        return next_batch_number(session.batch) if session else FIRST_BATCH

    def next_rrn(self) -> str:
        with self._lock:
            if self._rrn_next >= self._rrn_limit:
                self._db.execute(
                    "INSERT INTO counters VALUES ('rrn', ?) ON CONFLICT(name) DO UPDATE SET value = value + ?",
                    (RRN_BLOCK, RRN_BLOCK),
                )
                self._rrn_limit = int(self._db.execute("SELECT value FROM counters WHERE name = 'rrn'").fetchone()[0])
                self._rrn_next = self._rrn_limit - RRN_BLOCK
            self._rrn_next += 1
            value = self._rrn_next
        return format_rrn(time.strftime("%y%j"), value, self.instance)

    # transactions
    def find(self, terminal_id: str, batch: str, stan: str, mti: str | None = None) -> JournalTxn | None:
        sql = f"SELECT {_TXN_COLUMNS} FROM txns WHERE terminal_id = ? AND batch = ? AND stan = ?"  # noqa: S608
        params: tuple[Any, ...] = (terminal_id, batch, stan)
        if mti is not None:
            sql += " AND mti = ?"
            params += (mti,)
        row = self._one(sql + " ORDER BY created_at LIMIT 1", params)
        return JournalTxn(**dict(zip(JournalTxn.__dataclass_fields__, row, strict=True))) if row else None

    def record_request(
        self,
        *,
        terminal_id: str,
        batch: str,
        stan: str,
        mti: str,
        kind: str,
        pan_masked: str,
        amount: int,
        local_date: str,
        local_time: str,
        original_stan: str | None,
        ledger_request: LedgerRequest,
    ) -> LedgerRequest | None:
        """Journal a request before it goes to the ledger: ``ledger_request`` is given the next RRN and kept
        with the row until its answer is journaled (a restart settles rows left pending: it needs the card
        number to reverse them; :meth:`record_answer` forgets it). ``None`` if (terminal, batch, STAN, MTI) is
        already journaled."""
        rrn = self.next_rrn()
        request = dataclasses.replace(ledger_request, rrn=rrn)
        try:
            self._exec(
                "INSERT INTO txns (terminal_id, batch, stan, mti, kind, pan_masked, amount, local_date, local_time, "
                "rrn, status, original_stan, created_at, pending_request) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
                (
                    terminal_id,
                    batch,
                    stan,
                    mti,
                    kind,
                    pan_masked,
                    amount,
                    local_date,
                    local_time,
                    rrn,
                    original_stan,
                    time.time(),
                    self._seal(request),
                ),
            )
        except sqlite3.IntegrityError:
            return None
        return request

    def unsettled(self) -> list[tuple[JournalTxn, LedgerRequest | None]]:
        """Rows left pending (a crash between asking the ledger and journaling its answer), each with the
        ledger request it kept (``None`` for a row written by an older acqsim)."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_TXN_COLUMNS}, pending_request FROM txns WHERE status = 'pending' ORDER BY created_at"  # noqa: S608
            ).fetchall()
        return [
            (
                JournalTxn(**dict(zip(JournalTxn.__dataclass_fields__, row[:-1], strict=True))),
                self._unseal(row[-1]) if row[-1] else None,
            )
            for row in rows
        ]

    def record_answer(
        self,
        terminal_id: str,
        batch: str,
        stan: str,
        mti: str,
        *,
        response_code: str,
        auth_code: str | None,
        status: str,
    ) -> None:
        self._exec(
            "UPDATE txns SET response_code = ?, auth_code = ?, status = ?, pending_request = NULL "
            "WHERE terminal_id = ? AND batch = ? AND stan = ? AND mti = ?",
            (response_code, auth_code, status, terminal_id, batch, stan, mti),
        )

    def set_status(self, terminal_id: str, batch: str, stan: str, mti: str, status: str) -> None:
        self._exec(
            "UPDATE txns SET status = ?, pending_request = NULL "
            "WHERE terminal_id = ? AND batch = ? AND stan = ? AND mti = ?",
            (status, terminal_id, batch, stan, mti),
        )

    def totals(self, terminal_id: str, batch: str) -> SettlementTotals:
        def block(kinds: tuple[str, ...]) -> tuple[int, int]:
            marks = ",".join("?" * len(kinds))
            row = self._one(
                f"SELECT COALESCE(SUM(amount), 0), COUNT(*) FROM txns WHERE terminal_id = ? AND batch = ? "  # noqa: S608
                f"AND status IN ('approved', 'voided') AND kind IN ({marks})",
                (terminal_id, batch, *kinds),
            )
            return int(row[0]), int(row[1])

        debit_amount, debit_count = block(DEBIT_KINDS)
        credit_amount, credit_count = block(CREDIT_KINDS)
        return SettlementTotals(
            domestic=CardTotals(
                debit_amount=debit_amount,
                debit_count=debit_count,
                credit_amount=credit_amount,
                credit_count=credit_count,
            )
        )

    # PIN tries
    def pin_failures(self, pan: str, day: str) -> int:
        """From memory: no disk, no thread."""
        return self._pin_failures.get((self._data_key.fingerprint(pan), day), 0)

    def reserve_pin_try(self, pan: str, day: str, limit: int) -> bool:
        """Take one of the card's ``limit`` PIN tries for a verification about to go to the HSM, unless the
        failures so far and the tries already in flight use them all up. In memory, no disk, no thread: called
        inline on the event loop, the check and the take are one step."""
        key = (self._data_key.fingerprint(pan), day)
        in_flight = self._pin_in_flight.get(key, 0)
        if self._pin_failures.get(key, 0) + in_flight >= limit:
            return False
        self._pin_in_flight[key] = in_flight + 1
        return True

    def release_pin_try(self, pan: str, day: str) -> None:
        """Give back a reserved try: the PIN was right, or was not verified."""
        key = (self._data_key.fingerprint(pan), day)
        left = self._pin_in_flight.get(key, 0) - 1
        if left > 0:
            self._pin_in_flight[key] = left
        else:
            self._pin_in_flight.pop(key, None)

    def add_pin_failure(self, pan: str, day: str, *, reserved: bool = False) -> int:
        """Count a wrong PIN seen here, in memory (inline, no disk: the card's ledger counts it durably for the
        pool); with ``reserved``, the try reserved for it becomes this failure in the same step. → this
        instance's failures of the card today."""
        key = (self._data_key.fingerprint(pan), day)
        if key not in self._pin_failures:
            self._make_room_for_pin_failure(day)
        failures = self._pin_failures.get(key, 0) + 1
        self._pin_failures[key] = failures
        if reserved:
            self.release_pin_try(pan, day)
        return failures

    def _make_room_for_pin_failure(self, day: str) -> None:
        """Keep the memory of wrong PINs bounded: when a newer day starts, the days before the one it follows
        are forgotten (no flow asks for them again); past ``PIN_FAILURE_MEMORY`` cards, the oldest day goes,
        and if only one day is left, all of it (a member forgetting costs at most a few more DCs of a card
        that day; the card's ledger still counts every failure and answers 75)."""
        if day > self._pin_failure_days[-1]:
            self._pin_failure_days = (self._pin_failure_days[-1], day)
            kept = set(self._pin_failure_days)
            self._pin_failures = {key: n for key, n in self._pin_failures.items() if key[1] in kept}
        if len(self._pin_failures) < PIN_FAILURE_MEMORY:
            return
        oldest = min(key[1] for key in self._pin_failures)
        if any(key[1] != oldest for key in self._pin_failures):
            self._pin_failures = {key: n for key, n in self._pin_failures.items() if key[1] != oldest}
        else:
            log.warning(
                "wrong PINs of %d cards held in memory: forgotten (the ledger's count decides)", PIN_FAILURE_MEMORY
            )
            self._pin_failures = {}

    def record_qr_request(
        self,
        *,
        terminal_id: str,
        batch: str,
        stan: str,
        mti: str,
        kind: str,
        code_masked: str,
        amount: int,
        local_date: str,
        local_time: str,
        original_stan: str | None,
    ) -> str | None:
        """Journal a QR request before the wallet is asked: its RRN, or ``None`` if (terminal, batch, STAN, MTI)
        is already journaled. No ledger request is kept (the wallet, not the ledger, holds the money; a crash
        before the answer is settled by the terminal's reversal, which goes to the wallet)."""
        rrn = self.next_rrn()
        try:
            self._exec(
                "INSERT INTO txns (terminal_id, batch, stan, mti, kind, pan_masked, amount, local_date, local_time, "
                "rrn, status, original_stan, created_at, pending_request) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, NULL)",
                (
                    terminal_id,
                    batch,
                    stan,
                    mti,
                    kind,
                    code_masked,
                    amount,
                    local_date,
                    local_time,
                    rrn,
                    original_stan,
                    time.time(),
                ),
            )
        except sqlite3.IntegrityError:
            return None
        return rrn

    # store-and-forward reversals to the wallet host (the encoded wallet-link REVS: no card data)
    def queue_wallet_reversal(self, message: str) -> None:
        self._exec("INSERT INTO wallet_reversals (message, created_at) VALUES (?, ?)", (message, time.time()))

    def pending_wallet_reversals(self) -> list[tuple[int, str]]:
        with self._lock:
            rows = self._db.execute("SELECT id, message FROM wallet_reversals ORDER BY id").fetchall()
        return [(int(i), str(text)) for i, text in rows]

    def wallet_reversal_done(self, reversal_id: int) -> None:
        self._exec("DELETE FROM wallet_reversals WHERE id = ?", (reversal_id,))

    def wallet_reversal_failed(self, reversal_id: int) -> None:
        self._exec("UPDATE wallet_reversals SET tries = tries + 1 WHERE id = ?", (reversal_id,))

    # store-and-forward notices to the merchant platform (the encoded merchant-link MSPU: totals, no card data)
    def method_totals(self, terminal_id: str, batch: str) -> dict[str, MethodTotals]:
        """The batch's debits and credits per method (CARD, QR), counted as :meth:`totals` counts them."""
        with self._lock:
            rows = self._db.execute(
                "SELECT kind, COALESCE(SUM(amount), 0), COUNT(*) FROM txns WHERE terminal_id = ? AND batch = ? "
                "AND status IN ('approved', 'voided') GROUP BY kind",
                (terminal_id, batch),
            ).fetchall()
        totals: dict[str, MethodTotals] = {}
        for kind, amount, count in rows:
            method = method_of(str(kind))
            t = totals.get(method, MethodTotals())
            if kind in DEBIT_KINDS:
                t = dataclasses.replace(t, debit_count=t.debit_count + count, debit_amount=t.debit_amount + amount)
            elif kind in CREDIT_KINDS:
                t = dataclasses.replace(t, credit_count=t.credit_count + count, credit_amount=t.credit_amount + amount)
            totals[method] = t
        return totals

    def queue_merchant_notice(self, message: str) -> None:
        self._exec("INSERT INTO merchant_notices (message, created_at) VALUES (?, ?)", (message, time.time()))

    def pending_merchant_notices(self) -> list[tuple[int, str]]:
        with self._lock:
            rows = self._db.execute("SELECT id, message FROM merchant_notices ORDER BY id").fetchall()
        return [(int(i), str(text)) for i, text in rows]

    def merchant_notice_done(self, notice_id: int) -> None:
        self._exec("DELETE FROM merchant_notices WHERE id = ?", (notice_id,))

    def merchant_notice_failed(self, notice_id: int) -> None:
        self._exec("UPDATE merchant_notices SET tries = tries + 1 WHERE id = ?", (notice_id,))

    # counters that must never repeat: a chip card's ATC, a DUKPT reader's counter (a sliding window)
    def use_counter(self, scope: str, owner: str, value: int, window: int) -> CounterVerdict:
        """Record ``value`` unless seen before or ``window`` or more below the highest seen. The row keeps the
        highest value and a bit mask of the ``window`` values below it that were seen (as an IPsec anti-replay
        window): repeats are refused, values a little out of order are not. Runs in the group commit, so the
        check and the record are one step; ``owner`` is stored as its keyed fingerprint only."""
        name = f"{scope}:{self._data_key.fingerprint(owner)}"
        with self._lock:
            row = self._one("SELECT high, seen FROM replay_windows WHERE name = ?", (name,))
            high, seen = (int(row[0]), int(row[1])) if row else (-1, 0)
            mask = (1 << window) - 1
            if value > high:
                shift = value - high
                seen = ((seen << shift) | (1 << (shift - 1))) & mask if high >= 0 and shift <= window else 0
                high = value
            elif value == high or value <= high - window - 1:
                return CounterVerdict.REPEATED if value == high else CounterVerdict.TOO_OLD
            else:
                bit = 1 << (high - value - 1)
                if seen & bit:
                    return CounterVerdict.REPEATED
                seen |= bit
            self._exec(
                "INSERT INTO replay_windows VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET high = ?, seen = ?",
                (name, high, seen, high, seen),
            )
        return CounterVerdict.FRESH

    # store-and-forward reversals to the ledger
    def queue_reversal(self, request: LedgerRequest) -> None:
        self._exec(
            "INSERT INTO pending_reversals (request, created_at) VALUES (?, ?)", (self._seal(request), time.time())
        )

    def pending_reversals(self) -> list[tuple[int, LedgerRequest]]:
        """The reversals still owed to the ledger, oldest first (dead letters are not retried)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, request FROM pending_reversals WHERE state = ? ORDER BY id", (REVERSAL_PENDING,)
            ).fetchall()
        return [(int(i), self._unseal(text)) for i, text in rows]

    def reversal_done(self, reversal_id: int) -> None:
        self._exec("DELETE FROM pending_reversals WHERE id = ?", (reversal_id,))

    def reversal_failed(self, reversal_id: int, code: str | None = None) -> bool:
        """Count a failed try (``code``: what the ledger answered, if it answered); ``True`` when that was the
        last try allowed and the reversal is now a dead letter."""
        with self._lock:
            self._db.execute(
                "UPDATE pending_reversals SET tries = tries + 1, last_code = COALESCE(?, last_code) WHERE id = ?",
                (code, reversal_id),
            )
            row = self._db.execute("SELECT tries FROM pending_reversals WHERE id = ?", (reversal_id,)).fetchone()
        if row is not None and int(row[0]) >= MAX_REVERSAL_TRIES:
            self.reversal_dead(reversal_id, code)
            return True
        return False

    def reversal_dead(self, reversal_id: int, code: str | None) -> None:
        """Give up on a reversal the ledger refuses for good: kept, masked, for an operator to settle."""
        self._exec(
            "UPDATE pending_reversals SET state = ?, last_code = COALESCE(?, last_code) WHERE id = ?",
            (REVERSAL_DEAD, code, reversal_id),
        )

    def reversals(self, state: str) -> list[ReversalRow]:
        """The store-and-forward reversals in ``state`` (pending or dead), masked, for the journal commands."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, request, tries, last_code, created_at FROM pending_reversals WHERE state = ? ORDER BY id",
                (state,),
            ).fetchall()
        out = []
        for reversal_id, text, tries, last_code, created_at in rows:
            request = self._unseal(text)
            original = request.original
            out.append(
                ReversalRow(
                    id=int(reversal_id),
                    terminal_id=request.terminal_id,
                    stan=original.stan if original else request.stan,
                    rrn=original.rrn if original and original.rrn else request.rrn,
                    pan_masked=mask_pan(request.pan),
                    amount=request.amount,
                    tries=int(tries),
                    last_code=last_code,
                    created_at=float(created_at),
                )
            )
        return out
