"""Store-and-forward reversals end only on the ledger's 00. One the ledger refuses for good (12: its original
was voided meanwhile), or that runs out of tries, becomes a dead letter an operator can list; nothing is
retried for ever in silence."""

from __future__ import annotations

import functools
import json
import logging
import socket
from pathlib import Path

import anyio
import pytest

from acqkit.config import AcqsimConfig, Endpoint
from acqsim.cli import main
from core_ledger.api import LedgerAnswer, LedgerOp, LedgerRequest, OriginalRef
from core_ledger.client import LedgerClient
from core_ledger.model import TxnStatus
from core_ledger.server import serve as serve_ledger
from core_ledger.setup import open_service
from frontend.core import Context
from frontend.effects import AskLedger
from frontend.journal import MAX_REVERSAL_TRIES, REVERSAL_DEAD, Journal
from frontend.server import Frontend
from frontend.server import serve as serve_frontend
from hsm_sim.client import HsmClient
from hsm_sim.keys import DEFAULT_TEST_LMK
from hsm_sim.server import serve as serve_hsm
from terminal.pos import PosTerminal
from terminal.session import Original
from terminal.state import PendingReversal
from tests.frontend.harness import Harness
from tests.keyring import registry_for
from wire.codec import decode_pos_body
from wire.constants import ResponseCode, ReversalReason
from wire.posframe import PosFrame

pytestmark = pytest.mark.anyio
HOST = "127.0.0.1"
PAN = "6200001000000003"


def reversal(stan: str, local_date: str, local_time: str, rrn: str) -> LedgerRequest:
    return LedgerRequest(
        op=LedgerOp.REVERSAL,
        acquirer_id="48009999",
        terminal_id="10000001",
        merchant_id="898100000000001",
        stan=stan,
        local_time=local_time,
        local_date=local_date,
        transmission=local_date + local_time,
        pan=PAN,
        rrn="R" + rrn[1:],
        amount=1_000,
        original=OriginalRef(
            mti="0200", stan=stan, local_date=local_date, local_time=local_time, acquirer_id="48009999", rrn=rrn
        ),
    )


def test_a_reversal_that_keeps_failing_becomes_a_dead_letter(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.sqlite3")
    journal.run_batch([lambda j: j.queue_reversal(reversal("000007", "1124", "100000", "263280000001"))])
    (reversal_id, _), *_ = journal.pending_reversals()
    assert [journal.reversal_failed(reversal_id, "96") for _ in range(MAX_REVERSAL_TRIES)][-1] is True
    assert journal.pending_reversals() == []
    (dead,) = journal.reversals(REVERSAL_DEAD)
    assert dead.tries == MAX_REVERSAL_TRIES and dead.last_code == "96" and dead.stan == "000007"
    assert dead.pan_masked != PAN and dead.pan_masked.startswith(PAN[:6])
    journal.close()


async def test_a_reversal_the_ledger_refuses_is_a_dead_letter_not_done(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    config = AcqsimConfig.default(data_dir=tmp_path)
    card = config.card(PAN)
    journal_path = Path(config.store_path(config.frontend.db))
    async with anyio.create_task_group() as tg:
        hsm_port = await tg.start(functools.partial(serve_hsm, HOST, 0, lmk=DEFAULT_TEST_LMK))
        service = open_service(config.store_path(config.ledger.db), config)
        ledger_port = await tg.start(functools.partial(serve_ledger, HOST, 0, service=service))
        hsm = await HsmClient.connect(HOST, hsm_port)
        ledger = await LedgerClient.connect(HOST, ledger_port, timeout=2.0)
        journal = Journal(journal_path)
        frontend = Frontend(Context(registry=registry_for(config)), journal, hsm, ledger)
        fe_port = await tg.start(functools.partial(serve_frontend, HOST, 0, frontend=frontend))
        async with PosTerminal(config, "10000001", nac=Endpoint(host=HOST, port=fe_port), timeout=5) as pos:
            assert (await pos.sign_on()) is not None
            buy = await pos.financial("purchase", card, amount=1_000, pin=card.pin)
            assert buy is not None and buy.approved
            void = await pos.financial(
                "void", card, amount=1_000, original=Original(stan=buy.fields["11"], rrn=buy.fields["37"])
            )
            assert void is not None and void.approved
            balance = service.state.accounts[service.state.cards[PAN].account_id].balance
            # A reversal of the purchase owed to the ledger: the purchase was voided since, so it is refused (12).
            owed = reversal(buy.fields["11"], buy.fields["13"], buy.fields["12"], buy.fields["37"])
            await frontend.journal_writes.submit(lambda j: j.queue_reversal(owed))
            with caplog.at_level(logging.ERROR, logger="acqsim.frontend"):
                await frontend.forwarder.forward_pending()
            assert journal.pending_reversals() == []
            (dead,) = journal.reversals(REVERSAL_DEAD)
            assert dead.last_code == "12" and dead.tries == 0
            assert any("dead letter" in r.message for r in caplog.records)
            assert service.state.accounts[service.state.cards[PAN].account_id].balance == balance
        await ledger.aclose()
        await hsm.aclose()
        tg.cancel_scope.cancel()
    service.store.close()
    journal.close()

    capsys.readouterr()
    assert main(["frontend", "journal", "dead-letters", "--db", str(journal_path), "--json"]) == 1
    (line,) = capsys.readouterr().out.splitlines()
    shown = json.loads(line)
    assert shown["last_code"] == "12" and PAN not in line
    assert main(["frontend", "journal", "pending", "--db", str(journal_path)]) == 0
    assert "0 pending" in capsys.readouterr().out
    assert main(["frontend", "journal", "pending", "--db", str(tmp_path / "nope.sqlite3")]) == 2
    assert not (tmp_path / "nope.sqlite3").exists()


def test_a_terminal_reversal_the_ledger_answers_12_leaves_the_original_as_it_was(tmp_path: Path) -> None:
    fe = Harness(tmp_path).signed_on()
    card = fe.card()
    buy = fe.exchange("purchase", fe.terminal.financial("purchase", card, amount=500, pin=card.pin))
    refused = LedgerAnswer(response_code=ResponseCode.INVALID_TRANSACTION, rrn=buy.fields["37"])
    fe.overrides[AskLedger] = lambda effect: refused  # e.g. the original changed at the ledger meanwhile
    fe.terminal.state.pending_reversal = PendingReversal(
        fields={**decode_pos_body(fe.last_request), "t": "0400", "39": "98"}
    )
    payload = fe.terminal.reversal_due()
    assert payload is not None
    _, answer = fe.send(payload)
    assert decode_pos_body(PosFrame.parse(answer).body)["39"] == "12"
    original = fe.journal.find("10000001", fe.terminal.state.batch, buy.fields["11"])
    assert original is not None and original.status == "approved"


def test_a_ledger_96_is_an_unknown_outcome_reversed_not_a_decline(tmp_path: Path) -> None:
    """A 96 from the ledger may follow a commit that landed: the front-end queues a reversal and journals the
    purchase as reversed, never as declined."""
    fe = Harness(tmp_path).signed_on()
    card = fe.card()
    malfunction = LedgerAnswer(response_code=ResponseCode.SYSTEM_MALFUNCTION, rrn="")
    fe.overrides[AskLedger] = lambda effect: malfunction
    outcome = fe.exchange("purchase", fe.terminal.financial("purchase", card, amount=700, pin=card.pin))
    assert outcome.response_code == "96"
    (queued,) = fe.reversals
    assert queued.op is LedgerOp.REVERSAL and queued.original is not None
    assert queued.original.rrn == outcome.fields["37"] != queued.rrn  # names its original; its own RRN
    row = fe.journal.find("10000001", fe.terminal.state.batch, outcome.fields["11"])
    assert row is not None and row.status == "reversed" and row.response_code == "96"


def test_requests_that_name_an_original_carry_its_rrn(tmp_path: Path) -> None:
    fe = Harness(tmp_path).signed_on()
    card = fe.card()
    asked: list[LedgerRequest] = []
    answer_normally = fe.answer

    def spy(effect: object) -> object:
        if isinstance(effect, AskLedger):
            asked.append(effect.request)
        return answer_normally(effect)  # type: ignore[arg-type]

    fe.answer = spy  # type: ignore[method-assign]
    buy = fe.exchange("purchase", fe.terminal.financial("purchase", card, amount=300, pin=card.pin))
    void = fe.exchange(
        "void", fe.terminal.financial("void", card, amount=300, original=Original(stan=buy.fields["11"]))
    )
    assert void.approved
    assert asked[-1].original is not None and asked[-1].original.rrn == buy.fields["37"] != asked[-1].rrn


def test_an_impossible_reversal_gets_12_stores_nothing_and_its_retry_gets_12(tmp_path: Path) -> None:
    """#14.4: the reversal of a completion void whose pre-authorisation was cancelled since cannot apply (its
    hold is gone). Every transition is checked before anything is stored: 12, and again 12 on the retry."""
    fe = Harness(tmp_path).signed_on()
    card = fe.card()
    pre = fe.exchange("preauth", fe.terminal.financial("preauth", card, amount=1_000, pin=card.pin))
    preauth = Original(stan=pre.fields["11"], auth_code=pre.fields["38"])
    completion = fe.terminal.financial("preauth_completion", card, amount=1_000, pin=card.pin, original=preauth)
    done = fe.exchange("preauth_completion", completion)
    void = fe.terminal.financial(
        "preauth_completion_void", card, amount=1_000, pin=card.pin, original=Original(stan=done.fields["11"])
    )
    fe.send(void)  # approved at the host; the answer is lost, so the terminal will reverse the void
    fe.terminal.mark_reversal_reason(ReversalReason.NO_ANSWER)
    reversal = fe.terminal.reversal_due()
    fe.terminal.state.pending_reversal = None  # set aside while the cancel goes first
    assert reversal is not None
    cancel = fe.terminal.financial("preauth_cancel", card, amount=1_000, pin=card.pin, original=preauth)
    assert fe.exchange("preauth_cancel", cancel).approved
    account = fe.ledger.state.accounts[fe.ledger.state.cards[card.pan].account_id]
    before = (account.balance, account.held)
    statuses = {key: txn.status for key, txn in fe.ledger.state.txns.items()}
    for _ in range(2):  # the terminal's try, and its retry
        _, answer = fe.send(reversal)
        assert decode_pos_body(PosFrame.parse(answer).body)["39"] == "12"
    assert (account.balance, account.held) == before
    after = fe.ledger.state.txns
    assert {key: after[key].status for key in statuses} == statuses  # nothing changed state
    assert all(txn.status is TxnStatus.DECLINED for key, txn in after.items() if key not in statuses)
    row = fe.journal.find("10000001", fe.terminal.state.batch, decode_pos_body(PosFrame.parse(void).body)["11"])
    assert row is not None and row.status == "approved"


async def test_an_unreachable_ledger_never_turns_a_reversal_into_a_dead_letter(tmp_path: Path) -> None:
    """Store-and-forward waits out a ledger that is down (a restart): found by `acqsim chaos`, where a reversal
    queued while the ledger restarted was given up after ten refused connections."""
    config = AcqsimConfig.default(data_dir=tmp_path)
    async with anyio.create_task_group() as tg:
        hsm_port = await tg.start(functools.partial(serve_hsm, HOST, 0, lmk=DEFAULT_TEST_LMK))
        hsm = await HsmClient.connect(HOST, hsm_port)
        with socket.socket() as closed:  # a port nobody listens on: the ledger is down
            closed.bind((HOST, 0))
            down = closed.getsockname()[1]
        ledger = LedgerClient(HOST, down, timeout=0.5)
        journal = Journal(tmp_path / "journal.sqlite3")
        frontend = Frontend(Context(registry=registry_for(config)), journal, hsm, ledger)
        await tg.start(frontend.journal_writes.run_flusher)
        owed = reversal("000007", "1124", "100000", "263280000001")
        await frontend.journal_writes.submit(lambda j: j.queue_reversal(owed))
        for _ in range(MAX_REVERSAL_TRIES + 2):
            await frontend.forwarder.forward_pending()
        assert len(journal.pending_reversals()) == 1 and journal.reversals(REVERSAL_DEAD) == []
        await hsm.aclose()
        tg.cancel_scope.cancel()
    journal.close()
