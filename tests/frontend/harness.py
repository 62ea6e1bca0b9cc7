"""Drives the front-end core without a network: the real HSM command processor (sans-IO, in-process, keys as
cryptograms under the configured TEST LMK), the real ledger engine and a real SQLite journal answer its
effects, through the same effect-to-command and effect-to-journal mappings the shell uses; a test may replace
any one answer with a failure."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

from acqkit.config import AcqsimConfig
from core_ledger.engine import LedgerEngine
from core_ledger.seed import CardSeed, MerchantSeed, add_cards, add_merchants, base_state
from frontend.core import Context, Reply, inbound, process
from frontend.effects import (
    HSM_EFFECTS,
    AskLedger,
    AskScheme,
    AskWallet,
    Effect,
    QueueReversal,
    QueueWalletReversal,
    Together,
    VerifyMacAndPin,
    VerifyPin,
)
from frontend.hsm_effects import hsm_commands, hsm_result
from frontend.journal import Journal
from frontend.journal_ops import journal_call
from hsm_sim.client import PinVerification, read_answer
from hsm_sim.keys import DEFAULT_TEST_LMK
from hsm_sim.processor import HsmProcessor
from terminal.session import TerminalSession
from terminal.state import TerminalState
from tests.keyring import registry_for
from wallet.core import WalletCore
from wallet.seed import seed_accounts
from wallet.store import WalletStore
from wire.posframe import PosFrame

#: The header every in-process HSM command is sent under (the processor echoes it).
HSM_HEADER = "0000"

NOW = dt.datetime(2026, 11, 24, 10, 0, 0)


class Harness:
    def __init__(self, tmp: Path) -> None:
        self.config = AcqsimConfig.default(data_dir=tmp)
        self.registry = registry_for(self.config)
        self.ctx = Context(registry=self.registry, clock=lambda: NOW)
        self.journal = Journal(tmp / "journal.sqlite3")
        self.hsm = HsmProcessor(DEFAULT_TEST_LMK)
        state = base_state()
        add_merchants(state, [MerchantSeed(merchant_id=m.merchant_id, name=m.name) for m in self.config.merchants])
        for txn in add_cards(
            state, [CardSeed(pan=c.pan, expiry=c.expiry, status=c.status, balance=c.balance) for c in self.config.cards]
        ):
            state.txns[txn.key] = txn
            state.apply(txn.effects)
        self.ledger = LedgerEngine(state, clock=lambda: NOW.replace(tzinfo=dt.UTC))
        self.reversals: list[Any] = []
        #: The real wallet host's core on a real SQLite store, for QR payments; its clock is settable.
        self.wallet_store = WalletStore(tmp / "wallet.sqlite3")
        book = self.wallet_store.load()
        opening = seed_accounts(book)
        self.wallet_store.commit(opening)
        book.apply(opening)
        self.wallet = WalletCore(book)
        self.wallet_now = NOW.timestamp()
        self.wallet_reversals: list[Any] = []
        self.last_request = b""  # the body of the last request sent
        #: When set, the HSM's answer to every PIN verification (e.g. its own per-account limit).
        self.pin_answer: PinVerification | None = None
        self.overrides: dict[type, Callable[[Effect], Any]] = {}
        fixture = self.config.terminals[0]
        self.terminal = TerminalSession(
            TerminalState(terminal_id=fixture.terminal_id, merchant_id=fixture.merchant_id),
            bytes.fromhex(fixture.tmk),
            clock=lambda: NOW,
        )

    def answer(self, effect: Effect) -> Any:
        override = self.overrides.get(type(effect))
        if override is not None:
            return override(effect)
        if isinstance(effect, VerifyMacAndPin):  # each answered as if sent alone (overrides included)
            return self.answer(effect.mac), self.answer(effect.pin)
        if isinstance(effect, Together):  # each answered as if carried out alone, in order
            return tuple(self.answer(each) for each in effect.effects)
        if isinstance(effect, VerifyPin) and self.pin_answer is not None:
            return self.pin_answer
        if isinstance(effect, HSM_EFFECTS):  # the HSM's own command processor, as its server runs it
            commands = hsm_commands(effect)
            return hsm_result(effect, [read_answer(c, self.hsm.handle(c.payload(HSM_HEADER))) for c in commands])
        if isinstance(effect, AskLedger):
            decision = self.ledger.decide(effect.request)
            self.ledger.commit(decision)
            return decision.answer
        if isinstance(effect, QueueReversal):
            self.reversals.append(effect.request)
            return None
        if isinstance(effect, AskScheme):
            raise TypeError("the harness has no scheme switch (tests/scheme drive the off-us path)")
        if isinstance(effect, AskWallet):
            wallet_decision = self.wallet.decide(effect.request, self.wallet_now)
            self.wallet_store.commit(wallet_decision.records)
            self.wallet.apply(wallet_decision.records)
            return wallet_decision.answer
        if isinstance(effect, QueueWalletReversal):
            self.wallet_reversals.append(effect.request)
        assert not isinstance(effect, AskWallet)
        result = self.journal.run_batch([journal_call(effect)])[0]  # as the server runs it: in a batch of its own
        if isinstance(result, BaseException):
            raise result
        return result

    def drive(self, payload: bytes) -> Reply:
        """Run the core on ``payload`` to its reply, answering its effects as the shell would."""
        frame = PosFrame.parse(payload)
        self.last_request = frame.body
        request = inbound(frame)  # decoded once, at the edge, as the shell does
        if isinstance(request, Reply):
            return request
        flow = process(request, self.ctx)
        try:
            effect = next(flow)
            while True:
                effect = flow.send(self.answer(effect))
        except StopIteration as stop:
            reply: Reply = stop.value
        return reply

    def send(self, payload: bytes) -> tuple[Reply, bytes]:
        reply = self.drive(payload)
        frame = PosFrame.parse(payload)
        assert reply.body is not None
        answer = frame.answer(reply.body, header=frame.header.with_processing_request(reply.header_request))
        return reply, answer.to_bytes()

    def exchange(self, kind: str, payload: bytes) -> Any:
        _, answer = self.send(payload)
        return self.terminal.receive(kind, answer)

    def signed_on(self) -> Harness:
        outcome = self.exchange("sign_on", self.terminal.sign_on())
        assert outcome.approved
        return self

    def card(self, index: int = 0) -> Any:
        return dataclasses.replace(self.config.cards[index])
