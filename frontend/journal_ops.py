"""The journal effects as calls on the journal: ONE function, :func:`journal_call`, used by the shell (which
runs it inline or in the group commit, :mod:`frontend.interpreter`) and by the tests' harness alike."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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


def journal_call(effect: JournalEffect) -> JournalCall:
    """What ``effect`` does to the journal, as a call taking the journal and returning the effect's result."""
    match effect:
        case LoadSession(terminal_id=terminal_id):
            return lambda j: j.session(terminal_id)
        case OpenSession():
            return _open_session(effect)
        case SaveSession(session=session):
            return lambda j: j.save_session(session)
        case DropSession(terminal_id=terminal_id):
            return lambda j: j.drop_session(terminal_id)
        case NextRrn():
            return lambda j: j.next_rrn()
        case FindTxn(terminal_id=terminal_id, batch=batch, stan=stan):
            return lambda j: j.find(terminal_id, batch, stan)
        case RecordRequest():
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
        case RecordQrRequest():
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
        case QueueSettlementNotice(terminal_id=terminal_id, merchant_id=merchant_id, batch=batch):
            return lambda j: j.queue_merchant_notice(
                encode_message(
                    settlement_notice(merchant_id, terminal_id, batch, j.method_totals(terminal_id, batch)),
                    MERCHANT_LINK,
                ).decode("ascii")
            )
        case QueueWalletReversal(request=message):
            text = encode_message(message, WALLET_LINK).decode("ascii")
            return lambda j: j.queue_wallet_reversal(text)
        case RecordAnswer():
            return lambda j: j.record_answer(
                effect.terminal_id,
                effect.batch,
                effect.stan,
                effect.mti,
                response_code=effect.response_code,
                auth_code=effect.auth_code,
                status=effect.status,
            )
        case SetStatus():
            return lambda j: j.set_status(effect.terminal_id, effect.batch, effect.stan, effect.mti, effect.status)
        case BatchTotals(terminal_id=terminal_id, batch=batch):
            return lambda j: j.totals(terminal_id, batch)
        case QueueReversal(request=request):
            return lambda j: j.queue_reversal(request)
        case ReservePinTry(pan=pan, day=day, limit=limit):
            return lambda j: j.reserve_pin_try(pan, day, limit)
        case ReleasePinTry(pan=pan, day=day):
            return lambda j: j.release_pin_try(pan, day)
        case AddPinFailure(pan=pan, day=day):
            return lambda j: j.add_pin_failure(pan, day, reserved=True)
        case UseCounter(scope=scope, owner=owner, value=value, window=window):
            return lambda j: j.use_counter(scope, owner, value, window)
