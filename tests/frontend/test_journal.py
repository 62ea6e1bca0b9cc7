"""The front-end journal: what it keeps in memory survives a restart, RRNs never repeat, batches commit whole."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import typing
from pathlib import Path

import pytest

from core_ledger.api import LedgerOp, LedgerRequest, OriginalRef
from frontend import journal as journal_module
from frontend import journal_ops
from frontend.effects import JournalEffect
from frontend.journal import RRN_BLOCK, Journal, request_from_json, request_to_json
from frontend.records import Session

PAN = "6200001000000003"
DAY = "20261203"


def purchase_request(stan: str, pan: str = PAN) -> LedgerRequest:
    """A TEST purchase as the front-end asks the ledger for it (no RRN yet: the journal gives one)."""
    return LedgerRequest(
        op=LedgerOp.PURCHASE,
        acquirer_id="48009999",
        terminal_id="10000001",
        merchant_id="898100000000001",
        stan=stan,
        local_time="101010",
        local_date="1203",
        transmission="1203101010",
        pan=pan,
        rrn="",
        amount=100,
    )


def _request(journal: Journal, stan: str) -> str | None:
    template = purchase_request(stan)
    request = journal.record_request(
        terminal_id="10000001",
        batch="000001",
        stan=stan,
        mti="0200",
        kind="purchase",
        pan_masked="620000******0003",
        amount=100,
        local_date="1203",
        local_time="101010",
        original_stan=None,
        ledger_request=template,
    )
    return None if request is None else request.rrn


def test_sessions_survive_a_restart_and_pin_failures_are_memory_only(tmp_path: Path) -> None:
    """A wrong PIN's durable count is the card's ledger's (docs/frontend.md): the journal keeps its own in
    memory, only to bound the DCs this instance sends."""
    path = tmp_path / "journal.sqlite3"
    journal = Journal(path)
    session = Session(terminal_id="10000001", pik="U" + "1" * 32, mak="U" + "2" * 32, batch="000007")
    journal.run_batch([lambda j: j.save_session(session)])
    assert journal.reserve_pin_try(PAN, DAY, 1)
    assert not journal.reserve_pin_try(PAN, DAY, 1)  # the one try is in flight
    assert journal.add_pin_failure(PAN, DAY, reserved=True) == 1  # the reserved try became the failure
    assert not journal.reserve_pin_try(PAN, DAY, 1)
    assert journal.reserve_pin_try(PAN, DAY, 2)
    assert journal.session("10000001") == session
    assert journal.next_batch("10000001") == "000008"
    journal.close()

    reopened = Journal(path)
    assert reopened.session("10000001") == session
    assert reopened.pin_failures(PAN, DAY) == 0
    reopened.run_batch([lambda j: j.drop_session("10000001")])
    assert reopened.session("10000001") is None
    reopened.close()
    assert Journal(path).session("10000001") is None


def test_rrns_are_unique_across_blocks_and_restarts(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    seen: set[str] = set()
    for _ in range(3):  # each opening reserves a fresh block; what was left of the last one is skipped
        journal = Journal(path)
        rrns = [journal.run_batch([lambda j: j.next_rrn()])[0] for _ in range(RRN_BLOCK + 5)]
        assert all(len(rrn) == 12 and rrn.isdigit() for rrn in rrns)
        assert not seen & set(rrns)
        seen |= set(rrns)
        journal.close()
    assert len(seen) == 3 * (RRN_BLOCK + 5)


def test_a_batch_commits_whole_and_a_duplicate_is_answered_none(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.sqlite3")
    first, again, other = journal.run_batch(
        [lambda j: _request(j, "000001"), lambda j: _request(j, "000001"), lambda j: _request(j, "000002")]
    )
    assert isinstance(first, str) and isinstance(other, str) and first != other
    assert again is None  # (terminal, batch, STAN, MTI) already journaled: the front-end answers 94
    results = journal.run_batch([lambda j: 1 // 0, lambda j: _request(j, "000003")])
    assert isinstance(results[0], ZeroDivisionError) and isinstance(results[1], str)  # one call's error is its own
    assert journal.find("10000001", "000001", "000003") is not None


def test_memory_follows_the_disk_when_a_commit_fails(tmp_path: Path) -> None:
    """A batch whose COMMIT fails changes neither the disk nor what the journal answers from memory."""

    journal = Journal(tmp_path / "journal.sqlite3")
    # A deferred foreign key makes the COMMIT itself fail (as a full disk would), after every call succeeded.
    journal._db.executescript(
        "PRAGMA foreign_keys = ON; CREATE TABLE parent (id INTEGER PRIMARY KEY);"
        "CREATE TABLE child (p INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED);"
    )
    session = Session(terminal_id="10000001", pik="U" + "1" * 32, mak="U" + "2" * 32, batch="000007")

    def breaks_the_commit(j: Journal) -> None:
        j._db.execute("INSERT INTO child VALUES (42)")

    calls = [lambda j: j.save_session(session)]
    with pytest.raises(sqlite3.IntegrityError):
        journal.run_batch([*calls, breaks_the_commit])
    assert journal.session("10000001") is None
    journal.run_batch(calls)  # the same call, committed this time
    assert journal.session("10000001") == session
    journal.close()


def test_a_pending_row_keeps_its_ledger_request_until_answered(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.sqlite3")
    (rrn,) = journal.run_batch([lambda j: _request(j, "000009")])
    ((row, request),) = journal.unsettled()
    assert row.stan == "000009" and request is not None and request.rrn == rrn and request.pan == PAN
    journal.run_batch(
        [
            lambda j: j.record_answer(
                "10000001", "000001", "000009", "0200", response_code="00", auth_code="000001", status="approved"
            )
        ]
    )
    assert journal.unsettled() == []
    assert journal._db.execute("SELECT pending_request FROM txns").fetchone() == (None,)  # the PAN is forgotten
    journal.close()


def test_a_journaled_ledger_request_keeps_every_field_and_reads_back_equal() -> None:
    """The journal's JSON of a ledger request is what ``dataclasses.asdict`` gives (the op as its value), so a
    field added to ``LedgerRequest`` or ``OriginalRef`` is kept too, and it reads back as the same request."""
    original = OriginalRef(mti="0200", stan="000001", local_date="1203", local_time="101010", acquirer_id="48009999")
    void = dataclasses.replace(
        purchase_request("000002"), op=LedgerOp.VOID, rrn="333712345678", auth_code="000001", original=original
    )
    for request in (purchase_request("000001"), void):
        text = request_to_json(request)
        assert json.loads(text) == {**dataclasses.asdict(request), "op": request.op.value}
        assert request_from_json(text) == request


def test_every_journal_effect_has_its_journal_call() -> None:
    assert set(journal_ops._BUILDERS) == set(typing.get_args(JournalEffect))


def test_wrong_pins_in_memory_are_forgotten_a_day_later_and_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The member's memory of wrong PINs does not grow for ever: a day is dropped once two newer days have
    started, and past ``PIN_FAILURE_MEMORY`` cards the oldest day goes (the ledger's count still decides)."""
    journal = Journal(tmp_path / "journal.sqlite3")
    other = "6200000000000005"
    journal.add_pin_failure(PAN, "20261201")
    journal.add_pin_failure(PAN, "20261202")
    assert journal.pin_failures(PAN, "20261201") == 1  # the day before the newest is kept (a flow near midnight)
    journal.add_pin_failure(other, "20261203")
    assert journal.pin_failures(PAN, "20261201") == 0
    assert (journal.pin_failures(PAN, "20261202"), journal.pin_failures(other, "20261203")) == (1, 1)

    monkeypatch.setattr(journal_module, "PIN_FAILURE_MEMORY", 2)
    journal.add_pin_failure(PAN, "20261203")  # the memory is full: the oldest day goes
    assert journal.pin_failures(PAN, "20261202") == 0
    assert journal.pin_failures(PAN, "20261203") == 1
    assert journal.add_pin_failure(other, "20261203") == 2  # a card already counted takes no room
    journal.add_pin_failure("6200000000000013", "20261203")  # full of one day: all of it is forgotten
    assert (journal.pin_failures(PAN, "20261203"), journal.pin_failures("6200000000000013", "20261203")) == (0, 1)
    journal.close()
