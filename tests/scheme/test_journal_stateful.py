"""The switch journal beside a simple model (hypothesis stateful): whatever mix of approved and declined
purchases, refunds, reversals (by the original's RRN), voids (by field 90) and repeats arrives, what it hands to
clearing is exactly the approved purchases and refunds that nothing undid — each once."""

from __future__ import annotations

import dataclasses
import itertools
import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule

from core_ledger.api import LedgerOp
from scheme.core import LegRecord
from scheme.journal import SwitchJournal
from wire.clearingfile import CardType
from wire.constants import ResponseCode

DAY = "20261204"
MTIS = {LedgerOp.PURCHASE: "0200", LedgerOp.REFUND: "0220", LedgerOp.REVERSAL: "0400", LedgerOp.VOID: "0200"}


def leg(op: LedgerOp, n: int, amount: int, *, approved: bool = True, rrn: str = "", original: str = "") -> LegRecord:
    return LegRecord(
        acquirer_id="48009999",
        rrn=rrn or f"{n:012d}",
        mti=MTIS[op],
        op=op,
        issuer_id="63050000",
        masked_pan="623050******0014",
        card_type=CardType.DEBIT,
        amount=amount,
        currency="156",
        stan=f"{n:06d}",
        local_date="1204",
        terminal_id="10000001",
        merchant_id="898100000000001",
        response_code=ResponseCode.APPROVED if approved else ResponseCode.INSUFFICIENT_FUNDS,
        auth_code="000001" if approved else "",
        stand_in=False,
        business_date=DAY,
        original_stan=original,
        original_date="1204" if original else "",
    )


class JournalMachine(RuleBasedStateMachine):
    sales = Bundle("sales")

    def __init__(self) -> None:
        super().__init__()
        self._folder = tempfile.TemporaryDirectory()
        self.journal = SwitchJournal(Path(self._folder.name) / "journal.sqlite3")
        self.numbers = itertools.count(1)
        self.model: dict[str, tuple[LedgerOp, int]] = {}  # RRN → what clearing must carry
        self.seen: list[LegRecord] = []

    def teardown(self) -> None:
        self.journal.close()
        self._folder.cleanup()

    @rule(target=sales, amount=st.integers(1, 10**7), approved=st.booleans())
    def purchase(self, amount: int, approved: bool) -> LegRecord:
        record = leg(LedgerOp.PURCHASE, next(self.numbers), amount, approved=approved)
        assert self.journal.record(record)
        if approved:
            self.model[record.rrn] = (LedgerOp.PURCHASE, amount)
        self.seen.append(record)
        return record

    @rule(amount=st.integers(1, 10**6))
    def refund(self, amount: int) -> None:
        record = leg(LedgerOp.REFUND, next(self.numbers), amount)
        assert self.journal.record(record)
        self.model[record.rrn] = (LedgerOp.REFUND, amount)

    @rule(sale=consumes(sales))
    def reverse(self, sale: LegRecord) -> None:
        reversal = leg(LedgerOp.REVERSAL, next(self.numbers), sale.amount, rrn=sale.rrn, original=sale.stan)
        assert self.journal.record(reversal)
        self.model.pop(sale.rrn, None)

    @rule(sale=consumes(sales), approved=st.booleans())
    def void(self, sale: LegRecord, approved: bool) -> None:
        void = leg(LedgerOp.VOID, next(self.numbers), sale.amount, approved=approved, original=sale.stan)
        assert self.journal.record(void)
        if approved:
            self.model.pop(sale.rrn, None)

    @rule(data=st.data())
    def repeat(self, data: st.DataObject) -> None:
        if self.seen:
            again = data.draw(st.sampled_from(self.seen))
            assert not self.journal.record(dataclasses.replace(again))  # a repeat is never kept twice

    @invariant()
    def clearing_is_the_model(self) -> None:
        cleared = {r.rrn: (r.op, r.amount) for r in self.journal.to_clear(DAY)}
        assert cleared == self.model
        assert len(self.journal.to_clear(DAY)) == len(cleared)  # each once


TestJournalMachine = JournalMachine.TestCase
TestJournalMachine.settings = settings(max_examples=25, stateful_step_count=20, deadline=None)
