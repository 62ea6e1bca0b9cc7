"""The answer's journal write and its MAC at once (:class:`frontend.effects.Together`): with the real HSM over
TCP and the real SQLite journal, the MAC is asked while the commit is still being written, the results come
back only once the write is durable, an HSM failure does not undo the write, and a failed write raises as if
it had been carried out alone — on asyncio and trio. The flow's outcomes stay today's (an M6 failure: 96)."""

from __future__ import annotations

import functools
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from acqkit.config import AcqsimConfig
from acqkit.groupcommit import CommitFailed
from core_ledger.client import LedgerClient
from core_ledger.server import serve as serve_ledger
from core_ledger.setup import open_service
from frontend.effects import (
    Effect,
    FailureKind,
    GenerateMac,
    LoadSession,
    NextRrn,
    PeerFailure,
    QueueReversal,
    SaveSession,
    Together,
)
from frontend.interpreter import Interpreter
from frontend.journal import Journal
from frontend.records import Session
from hsm_sim.client import HsmClient, KeyType
from hsm_sim.keys import DEFAULT_TEST_LMK
from hsm_sim.server import serve as serve_hsm
from tests.frontend.harness import Harness

HOST = "127.0.0.1"
#: Longest any step of these tests may take (a deadline, never a pause).
STEP_S = 10.0
DATA = b"0210 answer body TEST"


class Observed(Interpreter):
    """The real interpreter, noting when each effect it carried out ended (a MAC answered: ``mac_answered``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.mac_answered = anyio.Event()

    async def carry_out(self, effect: Effect, correlation: str | None = None) -> Any:
        result = await super().carry_out(effect, correlation)
        if isinstance(effect, GenerateMac):
            self.mac_answered.set()
        return result


@asynccontextmanager
async def interpreter(tmp_path: Path) -> AsyncIterator[tuple[Observed, str, str]]:
    """An interpreter on a real HSM and ledger (loopback, port 0) and a real journal (and its path); a MAK under
    the LMK."""
    config = AcqsimConfig.default(data_dir=tmp_path)
    async with anyio.create_task_group() as tg:
        hsm_port = await tg.start(functools.partial(serve_hsm, HOST, 0, lmk=DEFAULT_TEST_LMK))
        service = open_service(config.store_path(config.ledger.db), config)
        ledger_port = await tg.start(functools.partial(serve_ledger, HOST, 0, service=service))
        hsm = await HsmClient.connect(HOST, hsm_port)
        ledger = await LedgerClient.connect(HOST, ledger_port)
        journal_path = config.store_path(config.frontend.db)
        journal = Journal(journal_path)
        effects = Observed(journal, hsm, ledger, trace=None, reversal_queued=lambda: None)
        await tg.start(effects.journal_writes.run_flusher)
        mak = await hsm.generate_key(KeyType.TAK)
        try:
            yield effects, mak.under_lmk, journal_path
        finally:
            await hsm.aclose()
            await ledger.aclose()
            tg.cancel_scope.cancel()
    journal.close()
    service.store.close()


def _session(mak: str) -> Session:
    return Session(terminal_id="10000001", pik="U" + "0" * 32, mak=mak, batch="000001")


@pytest.mark.anyio
async def test_the_mac_is_asked_during_the_commit_and_the_results_wait_for_it(tmp_path: Path) -> None:
    async with interpreter(tmp_path) as (effects, mak, journal_path):
        held, holding = threading.Event(), threading.Event()

        def hold_the_commit_thread(_: Journal) -> None:  # an earlier batch still being written
            holding.set()
            held.wait(STEP_S)

        finished = anyio.Event()
        results: list[Any] = []

        async def together() -> None:
            results.extend(await effects.carry_out(Together((SaveSession(_session(mak)), GenerateMac(mak, DATA)))))
            finished.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(effects.journal_writes.submit, hold_the_commit_thread)
            with anyio.fail_after(STEP_S):
                await anyio.to_thread.run_sync(holding.wait, STEP_S)
            tg.start_soon(together)
            with anyio.fail_after(STEP_S):
                await effects.mac_answered.wait()  # answered while the journal's write waits behind the held one
            assert not finished.is_set()  # nothing comes back before the write is durable
            held.set()
            with anyio.fail_after(STEP_S):
                await finished.wait()
        saved, mac = results
        assert saved is None and isinstance(mac, bytes) and len(mac) == 8
        reopened = Journal(journal_path)  # durable: another connection reads it
        try:
            assert reopened.session("10000001") == _session(mak)
        finally:
            reopened.close()


@pytest.mark.anyio
async def test_an_hsm_failure_leaves_the_write_done_and_a_failed_write_raises(tmp_path: Path) -> None:
    async with interpreter(tmp_path) as (effects, mak, _):
        with anyio.fail_after(STEP_S):
            saved, mac = await effects.carry_out(
                Together((SaveSession(_session(mak)), GenerateMac("U" + "F" * 32, DATA)))  # no key of this LMK
            )
        assert saved is None and isinstance(mac, PeerFailure) and mac.kind is FailureKind.ERROR
        assert effects.journal.session("10000001") == _session(mak)
        effects.journal.close()  # the journal goes away: the write fails, the MAC is still answered
        with anyio.fail_after(STEP_S), pytest.raises(CommitFailed):
            await effects.carry_out(Together((SaveSession(_session(mak)), GenerateMac(mak, DATA))))
        assert effects.mac_answered.is_set()


def test_an_m6_failure_after_the_ledger_approved_answers_96_and_keeps_the_approval_journaled(tmp_path: Path) -> None:
    fe = Harness(tmp_path).signed_on()
    fe.overrides[GenerateMac] = lambda _: PeerFailure("hsm", FailureKind.UNAVAILABLE)
    card = fe.card()
    reply = fe.drive(fe.terminal.financial("purchase", card, amount=1234, pin=card.pin))
    assert reply.response_code == "96"
    session = fe.journal.session(fe.terminal.state.terminal_id)
    assert session is not None
    txn = fe.journal.find(session.terminal_id, session.batch, f"{fe.terminal.state.stan:06d}")
    assert txn is not None and (txn.status, txn.response_code) == ("approved", "00")  # as before: it was posted


def test_only_durable_writes_and_hsm_effects_go_together() -> None:
    assert Together((NextRrn(), GenerateMac("U" + "0" * 32, DATA))).effects[0] == NextRrn()
    for alone in (LoadSession("10000001"), QueueReversal(request=None)):  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="is not carried out together"):
            Together((alone,))
