"""Settlement (0500, PROTOCOL.md §3) and batch upload (0320): the terminal's totals against the journal's."""

from __future__ import annotations

import dataclasses
from collections.abc import Generator
from typing import Any

from frontend.effects import BatchTotals, Effect, QueueSettlementNotice, SaveSession
from frontend.flows.answer import Answer, Flow, done, refuse
from frontend.messages import Kind
from frontend.records import Session, next_batch_number
from wire.constants import CARD_ORG_CUP, ResponseCode
from wire.fields import FLAG_BALANCED, FLAG_NOT_BALANCED, CardTotals, SettlementTotals


def close_batch(answer: Answer, session: Session) -> Generator[Effect, Any, None]:
    """Settlement closes the batch on both sides; the next batch number is the current one plus one. The
    merchant's "settlement done" notice is queued first (journal only: the platform is never waited for)."""
    merchant_id = answer.request.fields.get("42")  # checked against the registry (core check 3)
    if merchant_id:
        yield QueueSettlementNotice(session.terminal_id, merchant_id, session.batch)
    yield SaveSession(dataclasses.replace(session, batch=next_batch_number(session.batch)))


def _flag(claimed: CardTotals, ours: CardTotals) -> str:
    return FLAG_BALANCED if claimed.same_totals(ours) else FLAG_NOT_BALANCED


def settlement(answer: Answer, session: Session) -> Flow:
    """Each block of field 48 flagged balanced or not; a balanced settlement closes the batch."""
    claimed = answer.request.totals
    if claimed is None:  # absent or malformed
        return (yield from refuse(answer, ResponseCode.FORMAT_ERROR, session, Kind.SETTLEMENT))
    ours: SettlementTotals = yield BatchTotals(session.terminal_id, session.batch)
    domestic, foreign = _flag(claimed.domestic, ours.domestic), _flag(claimed.foreign, ours.foreign)
    answer.fields["48"] = claimed.with_flags(domestic, foreign).encode()
    answer.fields["63"] = CARD_ORG_CUP
    if domestic == foreign == FLAG_BALANCED:
        yield from close_batch(answer, session)  # balanced: the terminal carries on with the next batch
    return (yield from done(answer.code(ResponseCode.APPROVED), session, Kind.SETTLEMENT))


def batch_upload(answer: Answer, session: Session, kind: Kind) -> Flow:
    """Each upload is acknowledged; after an unbalanced settlement, the end of the upload closes the batch."""
    reply = yield from done(answer.code(ResponseCode.APPROVED), session, kind)
    if kind is Kind.BATCH_UPLOAD_END:
        yield from close_batch(answer, session)
    return reply
