"""A POS request as the ledger's request (core_ledger/api.py), a reversal of one, and the ledger's answer as
POS answer fields."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Final

from core_ledger.api import LedgerAnswer, LedgerOp, LedgerRequest, OriginalRef
from frontend.effects import AskLedger, AskScheme
from frontend.flows.answer import Answer, Context, local_date_time
from frontend.flows.checks import pin_entered
from frontend.records import JournalTxn, Session
from frontend.routing import Route, route_of
from wire.constants import CURRENCY_CNY, ConditionCode, ProcessingCode
from wire.fields import AMOUNT_TYPE_AVAILABLE, AdditionalAmount
from wire.posmessage import PosMessage

#: Field 4 when a request carries none (a balance enquiry).
NO_AMOUNT: Final = "0"


def ledger_request(
    op: LedgerOp,
    request: PosMessage,
    *,
    pan: str,
    rrn: str,
    acquirer_id: str,
    now: dt.datetime,
    original: JournalTxn | None,
) -> LedgerRequest:
    """The ledger's request for ``request`` (``original``: the journaled transaction it names, if any)."""
    local_date, local_time = local_date_time(request, now)
    ref = None
    if original is not None:
        ref = OriginalRef(
            mti=original.mti,
            stan=original.stan,
            local_date=original.local_date,
            local_time=original.local_time,
            acquirer_id=acquirer_id,
            rrn=original.rrn,  # the original's own transaction id: what the ledger finds it by
        )
    fields = request.fields
    return LedgerRequest(
        op=op,
        acquirer_id=acquirer_id,
        terminal_id=fields["41"],
        merchant_id=fields["42"],
        stan=fields["11"],
        local_time=local_time,
        local_date=local_date,
        transmission=local_date + local_time,
        pan=pan,
        rrn=rrn,
        amount=int(fields.get("4", NO_AMOUNT)),
        currency=fields.get("49", CURRENCY_CNY),
        expiry=fields.get("14"),
        pos_entry_mode=fields.get("22"),
        condition_code=fields.get("25", ConditionCode.NORMAL),
        auth_code=fields.get("38"),
        original=ref,
        target_pan=fields.get("48"),
    )


def ask_host(
    ctx: Context, session: Session, request: PosMessage, asked: LedgerRequest, *, with_pin: bool
) -> AskLedger | AskScheme:
    """The effect that puts ``asked`` to its host: the own ledger for an on-us card, the scheme switch for an
    off-us one (with the entered PIN block, to be translated to the acquirer zone's ZPK, when ``with_pin``)."""
    if ctx.scheme is None or route_of(ctx.scheme, asked.pan) is not Route.SCHEME:
        return AskLedger(asked)
    pin_block = None
    if with_pin and pin_entered(request) and "52" in request:
        try:
            pin_block = bytes.fromhex(request.fields["52"])
        except ValueError:
            pin_block = None  # the format check has answered 30 before a request gets here
    return AskScheme(
        request=asked,
        tpk_under_lmk=session.pik,
        zpk_under_lmk=ctx.scheme.zpk_under_lmk,
        pin_block=pin_block,
        track2=request.get("35"),
        mcc=ctx.scheme.mcc,
    )


def reversal_of(request: LedgerRequest, mti: str, rrn: str) -> LedgerRequest:
    """The ledger reversal that undoes ``request`` (whose POS message type was ``mti``) whatever became of it
    (store-and-forward after an unknown outcome): a transaction of its own (``rrn``, fresh from the journal)
    for the same card and amount, naming the request as its original by STAN and RRN."""
    return dataclasses.replace(
        request,
        op=LedgerOp.REVERSAL,
        rrn=rrn,
        original=OriginalRef(
            mti=mti,
            stan=request.stan,
            local_date=request.local_date,
            local_time=request.local_time,
            acquirer_id=request.acquirer_id,
            rrn=request.rrn,
        ),
    )


def apply_ledger_answer(answer: Answer, result: LedgerAnswer) -> None:
    """Response code, RRN, authorisation code, and for a balance enquiry the available balance (field 54)."""
    answer.code(result.response_code)
    answer.fields["37"] = result.rrn
    if result.auth_code:
        answer.fields["38"] = result.auth_code
    if result.available is not None and answer.request.get("3") == ProcessingCode.BALANCE:
        answer.fields["54"] = AdditionalAmount(
            amount=result.available, amount_type=AMOUNT_TYPE_AVAILABLE, currency=result.currency
        ).encode()
