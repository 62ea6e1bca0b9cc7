"""The switch journal's lookups read through their own connection (WAL): they see every committed leg at once and
never wait for the writer — not for its lock, not for a transaction still open."""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
from pathlib import Path

from core_ledger.api import LedgerOp
from scheme.core import LegRecord
from scheme.journal import SwitchJournal
from tests.scheme.test_journal_stateful import leg

LOOKUP_DEADLINE_S = 10.0


def find_in_thread(journal: SwitchJournal, record: LegRecord) -> list[LegRecord | None]:
    """Run ``find`` in another thread, as the shell does; the list holds its answer once it has returned."""
    answers: list[LegRecord | None] = []
    worker = threading.Thread(
        target=lambda: answers.append(journal.find(record.acquirer_id, record.rrn, record.msg_class)), daemon=True
    )
    worker.start()
    worker.join(LOOKUP_DEADLINE_S)
    return answers


def test_a_lookup_sees_a_commit_at_once_and_does_not_wait_for_the_writer(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    journal = SwitchJournal(path)
    committed, pending = leg(LedgerOp.PURCHASE, 1, 500), leg(LedgerOp.PURCHASE, 2, 700)
    assert journal.record_many([(committed, None)]) == [True]
    assert journal.find(committed.acquirer_id, committed.rrn, committed.msg_class) == committed

    other_writer = sqlite3.connect(path, isolation_level=None)
    other_writer.execute("BEGIN IMMEDIATE")
    other_writer.execute(
        "UPDATE legs SET amount = 1 WHERE rrn = ?", (committed.rrn,)
    )  # uncommitted: invisible to readers
    with journal._lock:  # the writer's lock, as record_many holds it through its commit
        assert find_in_thread(journal, committed) == [committed]
        assert find_in_thread(journal, pending) == [None]
    other_writer.execute("ROLLBACK")
    other_writer.close()

    assert journal.record_many([(pending, None), (dataclasses.replace(pending, amount=1), None)]) == [True, False]
    assert journal.find(pending.acquirer_id, pending.rrn, pending.msg_class) == pending
    journal.close()
