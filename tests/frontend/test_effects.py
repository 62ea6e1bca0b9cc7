"""The core's effects are plain data: a transaction's exact effect sequence, asserted by value; the core's
modules import no I/O; the fault and store-and-forward decisions as tables."""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core_ledger.api import MAX_PIN_FAILURES_PER_DAY, LedgerAnswer, LedgerOp, LedgerRequest
from frontend.core import inbound, process
from frontend.effects import (
    AddPinFailure,
    AskLedger,
    Effect,
    FailureKind,
    GenerateMac,
    LoadSession,
    NextRrn,
    PeerFailure,
    QueueReversal,
    RecordAnswer,
    RecordRequest,
    ReleasePinTry,
    ReservePinTry,
    Together,
    VerifyMacAndPin,
)
from frontend.flows.answer import Reply
from frontend.flows.faults import FaultPlan, ForwardVerdict, forward_verdict, plan_for_fault
from frontend.flows.ledger import reversal_of
from frontend.records import Session
from hsm_sim.client import PinVerification
from tests.frontend.harness import NOW, Harness
from wire.constants import ResponseCode as RC
from wire.localdate import business_date
from wire.posframe import PosFrame
from wire.posmessage import PosMessage

ROOT = Path(__file__).resolve().parents[2]
RRN = "263280000001"
Answers = dict[type, Callable[[Any], Any]]


def scripted(request: PosMessage, harness: Harness, answers: Answers) -> tuple[list[Effect], Reply]:
    """Run the core on ``request``, answering each effect by its type from ``answers``; every effect seen."""
    seen: list[Effect] = []
    flow = process(request, harness.ctx)
    try:
        effect = next(flow)
        while True:
            seen.append(effect)
            if isinstance(effect, Together):  # each answered by its type, in order
                effect = flow.send(tuple(answers[type(each)](each) for each in effect.effects))
            else:
                effect = flow.send(answers[type(effect)](effect))
    except StopIteration as stop:
        return seen, stop.value


def purchase(harness: Harness) -> tuple[PosMessage, Session]:
    card = harness.card()
    decoded = inbound(PosFrame.parse(harness.terminal.financial("purchase", card, amount=1234, pin=card.pin)))
    assert isinstance(decoded, PosMessage)
    session = harness.journal.session(decoded.terminal_id)
    assert session is not None
    return decoded, session


def numbered(effect: RecordRequest) -> LedgerRequest:
    return dataclasses.replace(effect.ledger_request, rrn=RRN)


@pytest.fixture
def fe(tmp_path: Path) -> Harness:
    return Harness(tmp_path).signed_on()


def test_an_approved_purchase_yields_exactly_these_effects(fe: Harness) -> None:
    request, session = purchase(fe)
    answers: Answers = {
        LoadSession: lambda _: session,
        ReservePinTry: lambda _: True,
        VerifyMacAndPin: lambda _: (True, PinVerification.OK),
        ReleasePinTry: lambda _: None,
        RecordRequest: numbered,
        AskLedger: lambda _: LedgerAnswer(response_code=RC.APPROVED, rrn=RRN, auth_code="123456"),
        RecordAnswer: lambda _: None,
        GenerateMac: lambda _: bytes(8),
    }
    effects, reply = scripted(request, fe, answers)
    assert [type(e) for e in effects] == [
        LoadSession,
        ReservePinTry,
        VerifyMacAndPin,
        ReleasePinTry,
        RecordRequest,
        AskLedger,
        Together,  # the answer's record made durable while the HSM MACs the answer
    ]
    together = effects[6]
    assert isinstance(together, Together) and [type(e) for e in together.effects] == [RecordAnswer, GenerateMac]
    pan = fe.card().pan
    day = NOW.strftime("%Y%m%d")
    assert effects[0] == LoadSession(session.terminal_id)
    assert effects[1] == ReservePinTry(pan, day, MAX_PIN_FAILURES_PER_DAY)
    assert effects[3] == ReleasePinTry(pan, day)
    record = effects[4]
    assert isinstance(record, RecordRequest) and record.amount == 1234 and record.pan_masked.count("*") == len(pan) - 10
    assert effects[5] == AskLedger(numbered(record))
    assert together.effects[0] == RecordAnswer(
        terminal_id=session.terminal_id,
        batch=session.batch,
        stan=request.stan,
        mti="0200",
        response_code="00",
        auth_code="123456",
        status="approved",
    )
    assert reply.body is not None and reply.note.endswith("→ 00")
    assert pan not in repr(effects)  # card numbers stay out of an effect's repr


def test_pin_tries_are_counted_on_the_terminals_business_day_as_the_ledger_counts_them(fe: Harness) -> None:
    request, session = purchase(fe)
    fields = dict(request.fields) | {"13": "1225"}  # the terminal's date; the host's clock says 2026-11-24
    past_new_year = dataclasses.replace(request, fields=fields | {"13": "0102"})
    for message, day in ((dataclasses.replace(request, fields=fields), "20261225"), (past_new_year, "20270102")):
        flow = process(message, fe.ctx)
        assert next(flow) == LoadSession(session.terminal_id)
        assert flow.send(session) == ReservePinTry(fe.card().pan, day, MAX_PIN_FAILURES_PER_DAY)
        flow.close()
        assert business_date(message.fields["13"], NOW) == day  # the ledger's business date of the request


def test_a_ledger_timeout_queues_a_reversal_and_answers_98(fe: Harness) -> None:
    request, session = purchase(fe)
    answers: Answers = {
        LoadSession: lambda _: session,
        ReservePinTry: lambda _: True,
        VerifyMacAndPin: lambda _: (True, PinVerification.OK),
        ReleasePinTry: lambda _: None,
        RecordRequest: numbered,
        AskLedger: lambda _: PeerFailure("ledger", FailureKind.TIMEOUT),
        NextRrn: lambda _: "263280000002",
        QueueReversal: lambda _: None,
        RecordAnswer: lambda _: None,
        GenerateMac: lambda _: bytes(8),
    }
    effects, reply = scripted(request, fe, answers)
    asked = effects[5]
    assert isinstance(asked, AskLedger)
    assert effects[6:9] == [
        NextRrn(),
        QueueReversal(reversal_of(asked.request, "0200", "263280000002")),
        RecordAnswer(
            terminal_id=session.terminal_id,
            batch=session.batch,
            stan=request.stan,
            mti="0200",
            response_code="98",
            auth_code=None,
            status="reversed",
        ),
    ]
    assert reply.note.endswith("→ 98")


def test_the_core_modules_import_no_io() -> None:
    """Core modules are sans-IO: no sqlite3, no anyio, no socket, no journal; they meet the journal through
    effects only."""
    forbidden = {"sqlite3", "anyio", "socket", "asyncio", "trio", "frontend.journal"}
    paths = [ROOT / "frontend" / "core.py", *sorted((ROOT / "frontend" / "flows").glob("*.py"))]
    for path in [*paths, *(ROOT / "frontend" / name for name in ("effects.py", "hsm_effects.py", "routing.py"))]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not {n.split(".")[0] for n in names} & forbidden, f"{path.name} imports {names}"
            assert not set(names) & forbidden, f"{path.name} imports {names}"


def test_a_fault_plan_for_every_case() -> None:
    purchase_request = LedgerRequest(
        op=LedgerOp.PURCHASE,
        acquirer_id="1",
        terminal_id="1",
        merchant_id="1",
        stan="000001",
        local_time="100000",
        local_date="1124",
        transmission="1124100000",
        pan="6200000000000000003",
        rrn=RRN,
        amount=1,
    )
    reversal = dataclasses.replace(purchase_request, op=LedgerOp.REVERSAL)
    assert plan_for_fault(None, journal_failed=True) is FaultPlan.ANSWER_96
    assert plan_for_fault(None, journal_failed=False) is FaultPlan.ANSWER_96
    assert plan_for_fault(purchase_request, journal_failed=True) is FaultPlan.NO_ANSWER
    assert plan_for_fault(reversal, journal_failed=True) is FaultPlan.NO_ANSWER
    assert plan_for_fault(purchase_request, journal_failed=False) is FaultPlan.REVERSE_AND_ANSWER_96
    assert plan_for_fault(reversal, journal_failed=False) is FaultPlan.ANSWER_96


@pytest.mark.parametrize(
    ("code", "verdict"),
    [
        (RC.APPROVED, ForwardVerdict.DONE),
        (RC.SYSTEM_MALFUNCTION, ForwardVerdict.TRY_AGAIN),
        (RC.CORE_TIMEOUT, ForwardVerdict.TRY_AGAIN),
        (RC.INVALID_TRANSACTION, ForwardVerdict.DEAD),
        (RC.ORIGINAL_NOT_FOUND, ForwardVerdict.DEAD),
    ],
)
def test_what_each_ledger_answer_means_to_a_queued_reversal(code: RC, verdict: ForwardVerdict) -> None:
    assert forward_verdict(code) is verdict


def _wrong_pin_answers(session: Session, report_answer: LedgerAnswer | PeerFailure) -> Answers:
    return {
        LoadSession: lambda _: session,
        ReservePinTry: lambda _: True,
        VerifyMacAndPin: lambda _: (True, PinVerification.WRONG_PIN),
        AddPinFailure: lambda _: 1,  # this front-end's first failure of the card today
        RecordRequest: numbered,
        AskLedger: lambda _: report_answer,
        RecordAnswer: lambda _: None,
        GenerateMac: lambda _: bytes(8),
    }


def test_a_wrong_pin_is_reported_under_the_requests_rrn_and_the_ledgers_code_is_answered(fe: Harness) -> None:
    """Issue 17: the card's ledger counts for the whole pool; its 75 wins over this front-end's own count."""
    request, session = purchase(fe)
    answers = _wrong_pin_answers(session, LedgerAnswer(response_code=RC.PIN_TRIES_EXCEEDED, rrn=RRN))
    effects, reply = scripted(request, fe, answers)
    assert [type(e) for e in effects] == [
        LoadSession,
        ReservePinTry,
        VerifyMacAndPin,
        AddPinFailure,
        RecordRequest,
        AskLedger,
        RecordAnswer,
        GenerateMac,
    ]
    record, report = effects[4], effects[5]
    assert isinstance(record, RecordRequest) and isinstance(report, AskLedger)
    assert report.request == dataclasses.replace(numbered(record), op=LedgerOp.PIN_FAILURE)
    assert report.request.rrn == RRN and report.request.pin_entered
    recorded = effects[6]
    assert isinstance(recorded, RecordAnswer) and (recorded.response_code, recorded.status) == ("75", "declined")
    assert reply.note.endswith("→ 75")


def test_a_report_the_ledger_does_not_answer_leaves_the_front_ends_own_verdict(
    fe: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """No reversal for a report (it posts nothing): 55 from this front-end's own count, and a WARNING."""
    request, session = purchase(fe)
    effects, reply = scripted(request, fe, _wrong_pin_answers(session, PeerFailure("ledger", FailureKind.TIMEOUT)))
    assert not any(isinstance(e, QueueReversal | NextRrn) for e in effects)
    assert reply.note.endswith("→ 55")
    assert "not counted at the ledger" in caplog.text and fe.card().pan not in caplog.text


def test_a_fault_after_a_pin_failure_report_queues_no_reversal() -> None:
    report = dataclasses.replace(a_purchase(), op=LedgerOp.PIN_FAILURE, original=None)
    assert plan_for_fault(report, journal_failed=False) is FaultPlan.ANSWER_96


def a_purchase() -> LedgerRequest:
    return LedgerRequest(
        op=LedgerOp.PURCHASE,
        acquirer_id="48009999",
        terminal_id="10000001",
        merchant_id="898100000000001",
        stan="000001",
        local_time="120000",
        local_date="1124",
        transmission="1124120000",
        pan="6200001000000003",
        rrn=RRN,
        amount=100,
        pos_entry_mode="021",
    )
