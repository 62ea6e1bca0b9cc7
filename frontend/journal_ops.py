"""The journal effects as calls on the journal: ONE function, :func:`journal_call`, used by the shell (which
runs it inline or in the group commit, :mod:`frontend.interpreter`) and by the tests' harness alike.

One small builder per effect type, found by the effect's type in a table: a ``match`` over the twenty effect
types in one function cost 1.5–5 µs a call (every variable any of its lambdas captures is made a cell on each
call), and a purchase makes four."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from frontend.effects import (
    AddPinFailure,
    BatchTotals,
    DropSession,
    FindTxn,
    JournalEffect,
    LoadSession,
    NextRrn,
    OpenSession,
    QueueReversal,
    QueueSettlementNotice,
    QueueWalletReversal,
    RecordAnswer,
    RecordQrRequest,
    RecordRequest,
    ReleasePinTry,
    ReservePinTry,
    SaveSession,
    SetStatus,
    UseCounter,
)
from frontend.journal import Journal
from frontend.notices import settlement_notice
from frontend.records import Session
from wire.merchantlink import MERCHANT_LINK
from wire.tlvlink import encode_message
from wire.walletlink import WALLET_LINK

JournalCall = Callable[[Journal], Any]


def _open_session(effect: OpenSession) -> JournalCall:
    def call(journal: Journal) -> str:
        batch = journal.next_batch(effect.terminal_id)
        session = Session(
            terminal_id=effect.terminal_id,
            pik=effect.pik_under_lmk,
            mak=effect.mak_under_lmk,
            batch=batch,
            tdk=effect.tdk_under_lmk,
        )
        journal.save_session(session)
        return batch

    return call


def _record_request(effect: RecordRequest) -> JournalCall:
    return lambda j: j.record_request(
        terminal_id=effect.terminal_id,
        batch=effect.batch,
        stan=effect.stan,
        mti=effect.mti,
        kind=effect.kind,
        pan_masked=effect.pan_masked,
        amount=effect.amount,
        local_date=effect.local_date,
        local_time=effect.local_time,
        original_stan=effect.original_stan,
        ledger_request=effect.ledger_request,
    )


def _record_qr_request(effect: RecordQrRequest) -> JournalCall:
    return lambda j: j.record_qr_request(
        terminal_id=effect.terminal_id,
        batch=effect.batch,
        stan=effect.stan,
        mti=effect.mti,
        kind=effect.kind,
        code_masked=effect.code_masked,
        amount=effect.amount,
        local_date=effect.local_date,
        local_time=effect.local_time,
        original_stan=effect.original_stan,
    )


def _queue_settlement_notice(effect: QueueSettlementNotice) -> JournalCall:
    return lambda j: j.queue_merchant_notice(
        encode_message(
            settlement_notice(
                effect.merchant_id, effect.terminal_id, effect.batch, j.method_totals(effect.terminal_id, effect.batch)
            ),
            MERCHANT_LINK,
        ).decode("ascii")
    )


def _queue_wallet_reversal(effect: QueueWalletReversal) -> JournalCall:
    text = encode_message(effect.request, WALLET_LINK).decode("ascii")
    return lambda j: j.queue_wallet_reversal(text)


def _record_answer(effect: RecordAnswer) -> JournalCall:
    return lambda j: j.record_answer(
        effect.terminal_id,
        effect.batch,
        effect.stan,
        effect.mti,
        response_code=effect.response_code,
        auth_code=effect.auth_code,
        status=effect.status,
    )


#: Each journal effect type's builder: the effect → the call on the journal that carries it out (every member of
#: ``JournalEffect`` has one: tests/frontend/test_effects.py).
_BUILDERS: Final[dict[type[Any], Callable[[Any], JournalCall]]] = {
    LoadSession: lambda e: lambda j: j.session(e.terminal_id),
    OpenSession: _open_session,
    SaveSession: lambda e: lambda j: j.save_session(e.session),
    DropSession: lambda e: lambda j: j.drop_session(e.terminal_id),
    NextRrn: lambda e: lambda j: j.next_rrn(),
    FindTxn: lambda e: lambda j: j.find(e.terminal_id, e.batch, e.stan),
    RecordRequest: _record_request,
    RecordQrRequest: _record_qr_request,
    QueueSettlementNotice: _queue_settlement_notice,
    QueueWalletReversal: _queue_wallet_reversal,
    RecordAnswer: _record_answer,
    SetStatus: lambda e: lambda j: j.set_status(e.terminal_id, e.batch, e.stan, e.mti, e.status),
    BatchTotals: lambda e: lambda j: j.totals(e.terminal_id, e.batch),
    QueueReversal: lambda e: lambda j: j.queue_reversal(e.request),
    ReservePinTry: lambda e: lambda j: j.reserve_pin_try(e.pan, e.day, e.limit),
    ReleasePinTry: lambda e: lambda j: j.release_pin_try(e.pan, e.day),
    AddPinFailure: lambda e: lambda j: j.add_pin_failure(e.pan, e.day, reserved=True),
    UseCounter: lambda e: lambda j: j.use_counter(e.scope, e.owner, e.value, e.window),
}


def journal_call(effect: JournalEffect) -> JournalCall:
    """What ``effect`` does to the journal, as a call taking the journal and returning the effect's result."""
    return _BUILDERS[type(effect)](effect)
