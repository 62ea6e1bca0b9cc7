"""A hypothesis state machine drives the real ledger on a real SQLite file beside a simple money model.

Rules cover every operation plus "restart the store"; invariants: all entries sum to zero, every balance is
the sum of its entries, available = balance − holds, no transaction posted twice, nothing committed lost
across a restart, and the money moves exactly as the model expects for every approval.
"""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from core_ledger.api import LedgerOp, LedgerRequest
from core_ledger.check import check_store
from core_ledger.engine import Decision, LedgerEngine
from core_ledger.model import Entry, HoldChange
from core_ledger.settlement import plan_settlement
from core_ledger.state import LedgerState
from tests.core_ledger.conftest import StoreFactory, StoreOpener
from tests.core_ledger.helpers import CARDS, GOOD, NOW, OTHER, request, seeded_state
from wire.constants import ResponseCode

PANS = [GOOD, OTHER, CARDS[2].pan, CARDS[6].pan]
amounts = st.integers(min_value=0, max_value=60_000)


class LedgerMachine(RuleBasedStateMachine):
    purchases = Bundle("purchases")
    preauths = Bundle("preauths")
    completions = Bundle("completions")
    undoings = Bundle("undoings")  # voids, refunds, cancels, completion voids, transfers: reversible too

    def __init__(self, factory: StoreFactory, keep: int | None) -> None:
        super().__init__()
        self.opener: StoreOpener = factory()
        self.keep = keep  # a serving ledger's bound on transactions in memory (None: all of them)

    @initialize()
    def open_store(self) -> None:
        self.store = self.opener()
        state = seeded_state()
        self.store.save_static(state)
        self.store.commit([((t,), t.effects) for t in state.txns.values()])
        if self.keep is not None:
            state = self.store.load(keep=self.keep)
        self.engine = LedgerEngine(state, clock=lambda: NOW)
        self.expected = {pan: self._balance(pan) for pan in PANS}
        self.expected_held = dict.fromkeys(PANS, 0)

    def teardown(self) -> None:
        if hasattr(self, "store"):
            self.store.close()

    def _balance(self, pan: str) -> int:
        return self.engine.state.accounts[self.engine.state.cards[pan].account_id].balance

    def _submit(self, req: LedgerRequest) -> Decision:
        decision = self.engine.decide(req)
        state = self.engine.state
        state.txns.queued += 1  # numbered as the service numbers its postings
        self.engine.commit(decision)
        self.store.commit([(decision.records, decision.effects)])
        state.txns.durable = state.txns.queued
        if not decision.repeat:
            for effect in decision.effects:
                pan = next((p for p in PANS if state.cards[p].account_id == getattr(effect, "account_id", "")), None)
                if pan is None:
                    continue
                if isinstance(effect, Entry):
                    self.expected[pan] += effect.amount
                elif isinstance(effect, HoldChange):
                    self.expected_held[pan] += effect.amount if effect.placed else -effect.amount
        return decision

    @rule(target=purchases, pan=st.sampled_from(PANS), amount=amounts)
    def purchase(self, pan: str, amount: int) -> LedgerRequest:
        before = self._balance(pan)
        req = request(LedgerOp.PURCHASE, pan, amount)
        decision = self._submit(req)
        if decision.answer.response_code is ResponseCode.APPROVED:
            assert self._balance(pan) == before - amount
        return req

    @rule(target=preauths, pan=st.sampled_from(PANS), amount=amounts)
    def preauth(self, pan: str, amount: int) -> LedgerRequest:
        req = request(LedgerOp.PREAUTH, pan, amount)
        self._submit(req)
        return req

    @rule(target=completions, pre=preauths, extra=st.integers(min_value=-500, max_value=2_000))
    def complete(self, pre: LedgerRequest, extra: int) -> LedgerRequest:
        req = request(LedgerOp.PREAUTH_COMPLETION, pre.pan, max(1, pre.amount + extra), original=pre)
        self._submit(req)
        return req

    @rule(target=undoings, pre=preauths)
    def cancel(self, pre: LedgerRequest) -> LedgerRequest:
        req = request(LedgerOp.PREAUTH_CANCEL, pre.pan, 0, original=pre)
        self._submit(req)
        return req

    @rule(target=undoings, done=completions)
    def void_completion(self, done: LedgerRequest) -> LedgerRequest:
        req = request(LedgerOp.PREAUTH_COMPLETION_VOID, done.pan, done.amount, original=done)
        self._submit(req)
        return req

    @rule(target=undoings, buy=purchases)
    def void(self, buy: LedgerRequest) -> LedgerRequest:
        req = request(LedgerOp.VOID, buy.pan, buy.amount, original=buy)
        self._submit(req)
        return req

    @rule(target=undoings, buy=purchases | completions, amount=amounts)
    def refund(self, buy: LedgerRequest, amount: int) -> LedgerRequest:
        before = self._balance(buy.pan)
        req = request(LedgerOp.REFUND, buy.pan, amount, original=buy)
        if self._submit(req).answer.response_code is ResponseCode.APPROVED:
            assert self._balance(buy.pan) == before + amount
            key = f"{buy.acquirer_id}|{buy.rrn}"
            assert self.engine.state.txns[key].refunded <= buy.amount
        return req

    @rule(target=undoings, pan=st.sampled_from(PANS), to=st.sampled_from(PANS), amount=amounts)
    def transfer(self, pan: str, to: str, amount: int) -> LedgerRequest:
        req = request(LedgerOp.TRANSFER, pan, amount, target_pan=to)
        self._submit(req)
        return req

    @rule(pan=st.sampled_from(PANS))
    def balance(self, pan: str) -> None:
        answer = self._submit(request(LedgerOp.BALANCE, pan)).answer
        account = self.engine.state.accounts[self.engine.state.cards[pan].account_id]
        assert (answer.balance, answer.available) == (account.balance, account.available)

    @rule(original=consumes(purchases) | preauths | completions | undoings, same_stan=st.booleans())
    def reverse(self, original: LedgerRequest, same_stan: bool) -> None:
        stan = original.stan if same_stan else None  # POS reversals reuse the original's STAN
        self._submit(request(LedgerOp.REVERSAL, original.pan, original.amount, stan=stan, original=original))

    @rule()
    def settle(self) -> None:
        run = plan_settlement(self._whole(), "20261124")
        self.store.commit(run.postings, settled=run.settled_keys)
        state = self.engine.state
        for records, effects in run.postings:
            for txn in records:
                state.txns[txn.key] = txn
            state.apply(effects)
        for key in run.settled_keys:
            state.txns[key].settled = True
        assert plan_settlement(self._whole(), "20261124").lines == ()

    def _whole(self) -> LedgerState:
        """Every transaction: the engine's state, or the store's when the engine keeps only recent ones."""
        return self.engine.state if self.keep is None else self.store.load()

    @rule(buy=purchases)
    def repeat(self, buy: LedgerRequest) -> None:
        before = {pan: self._balance(pan) for pan in PANS}
        decision = self._submit(buy)
        assert decision.repeat or decision.answer.response_code is not ResponseCode.APPROVED
        assert before == {pan: self._balance(pan) for pan in PANS}

    @rule()
    def restart(self) -> None:
        before = self.engine.state
        self.store.close()
        self.store = self.opener()
        after = self.store.load(keep=self.keep)
        before.txns.reader = self.store  # the same file, reopened
        assert {k: (a.balance, a.held) for k, a in after.accounts.items()} == {
            k: (a.balance, a.held) for k, a in before.accounts.items()
        }
        assert after.holds == before.holds
        stored = self.store.load().txns  # every transaction, each looked up in memory (or read back) as well
        assert {k: (t.status, t.refunded, t.settled) for k, t in stored.items()} == {
            k: (before.txns[k].status, before.txns[k].refunded, before.txns[k].settled) for k in stored
        }
        assert len(before.txns) == len(stored)
        assert after.daily == {k: v for k, v in before.daily.items() if v or k in after.daily}
        self.engine = LedgerEngine(after, clock=lambda: NOW)

    @invariant()
    def books_balance(self) -> None:
        state = self.engine.state
        assert sum(a.balance for a in state.accounts.values()) == 0
        for pan in PANS:
            account = state.accounts[state.cards[pan].account_id]
            assert account.balance == self.expected[pan]
            assert account.held == self.expected_held[pan]
            assert account.available == account.balance - account.held

    @invariant()
    def store_invariants(self) -> None:
        if hasattr(self, "store"):
            assert check_store(self.store) == []


@pytest.mark.parametrize("keep", [None, 2], ids=["all-in-memory", "2-in-memory"])
def test_ledger_state_machine(store_factory: StoreFactory, keep: int | None) -> None:
    run_state_machine_as_test(
        lambda: LedgerMachine(store_factory, keep),  # type: ignore[arg-type]  # hypothesis accepts any factory
        settings=settings(max_examples=25, stateful_step_count=25, deadline=None),
    )
