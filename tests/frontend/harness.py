"""Drives the front-end core without a network: the real HSM processor (sans-IO), the real ledger engine
and a real SQLite journal answer its effects; a test may replace any one answer with a failure."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

from acqkit.config import AcqsimConfig
from core_ledger.engine import LedgerEngine
from core_ledger.seed import CardSeed, MerchantSeed, add_cards, add_merchants, base_state
from frontend.core import Context, Reply, process
from frontend.effects import (
    AskLedger,
    Effect,
    GenerateMac,
    GenerateWorkingKeys,
    JournalCall,
    JournalRead,
    QueueReversal,
    VerifyMac,
    VerifyMacAndPin,
    VerifyPin,
)
from frontend.journal import Journal
from hsm_sim.client import GeneratedKey, PinVerification
from hsm_sim.keys import DEFAULT_TEST_LMK, KeyType, decrypt_under_lmk, encrypt_under_lmk
from terminal.session import TerminalSession
from terminal.state import TerminalState
from tests.keyring import registry_for
from wire.paycrypto import (
    PinBlockError,
    decrypt_pin,
    encrypt_key_under,
    generate_key,
    key_check_value,
    mac_cup_ecb,
    visa_pvv,
)
from wire.posframe import PosFrame

NOW = dt.datetime(2026, 11, 24, 10, 0, 0)


class Harness:
    def __init__(self, tmp: Path) -> None:
        self.config = AcqsimConfig.default(data_dir=tmp)
        self.registry = registry_for(self.config)
        self.ctx = Context(registry=self.registry, clock=lambda: NOW)
        self.journal = Journal(tmp / "journal.sqlite3")
        state = base_state()
        add_merchants(state, [MerchantSeed(merchant_id=m.merchant_id, name=m.name) for m in self.config.merchants])
        for txn in add_cards(
            state, [CardSeed(pan=c.pan, expiry=c.expiry, status=c.status, balance=c.balance) for c in self.config.cards]
        ):
            state.txns[txn.key] = txn
            state.apply(txn.effects)
        self.ledger = LedgerEngine(state, clock=lambda: NOW.replace(tzinfo=dt.UTC))
        self.reversals: list[Any] = []
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
        lmk = DEFAULT_TEST_LMK
        if isinstance(effect, JournalCall):
            result = self.journal.run_batch([effect.call])[0]  # as the server runs it: in a batch of its own
            if isinstance(result, BaseException):
                raise result
            return result
        if isinstance(effect, JournalRead):
            return effect.call(self.journal)
        if isinstance(effect, QueueReversal):
            self.reversals.append(effect.request)
            return None
        if isinstance(effect, AskLedger):
            decision = self.ledger.decide(effect.request)
            self.ledger.commit(decision)
            return decision.answer
        if isinstance(effect, GenerateWorkingKeys):
            tmk = decrypt_under_lmk(lmk, KeyType.TMK, effect.tmk_under_lmk)
            out = []
            for key_type in (KeyType.TPK, KeyType.TAK):
                clear = generate_key()
                out.append(
                    GeneratedKey(
                        encrypt_under_lmk(lmk, key_type, clear),
                        encrypt_key_under(tmk, clear).hex().upper(),
                        key_check_value(clear).hex().upper(),
                    )
                )
            return tuple(out)
        if isinstance(effect, VerifyMac):
            mak = decrypt_under_lmk(lmk, KeyType.TAK, effect.mak_under_lmk)
            return mac_cup_ecb(mak, effect.data) == effect.mac
        if isinstance(effect, GenerateMac):
            return mac_cup_ecb(decrypt_under_lmk(lmk, KeyType.TAK, effect.mak_under_lmk), effect.data)
        if isinstance(effect, VerifyPin) and self.pin_answer is not None:
            return self.pin_answer
        if isinstance(effect, VerifyPin):
            tpk = decrypt_under_lmk(lmk, KeyType.TPK, effect.tpk_under_lmk)
            pvk = decrypt_under_lmk(lmk, KeyType.PVK, effect.pvk_under_lmk)
            try:
                pin = decrypt_pin(tpk, effect.pin_block, effect.pan)
            except PinBlockError:  # as the HSM's DC: a malformed block is a wrong PIN (no PIN oracle)
                return PinVerification.WRONG_PIN
            ok = visa_pvv(pvk, effect.pan, effect.pvki, pin) == effect.pvv
            return PinVerification.OK if ok else PinVerification.WRONG_PIN
        raise AssertionError(effect)

    def drive(self, payload: bytes) -> Reply:
        """Run the core on ``payload`` to its reply, answering its effects as the shell would."""
        frame = PosFrame.parse(payload)
        self.last_request = frame.body
        flow = process(frame, self.ctx)
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
