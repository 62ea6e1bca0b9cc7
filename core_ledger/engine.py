"""The ledger's decisions: one request in, an answer and the effects to apply out. No I/O.

Rules (PROTOCOL.md §2, §3a; docs/ledger.md explains each):
- Idempotency key (32, 37): the acquirer and the RRN, the front-end's own transaction id. A repeat of a key with
  the same content (operation, PAN, amount, terminal, target, original) gets the first answer back and posts
  nothing; the same key with other content answers 94, logs a WARNING naming what differs and counts it in
  ``LedgerEngine.conflicts``. A STAN reused in a new batch comes with a new RRN: a new transaction.
- Card checks, in order: unknown PAN 14, lost 41, stolen 43, blocked/restricted 62, expired 54 (card expiry
  before the current month, or field 14 present and not the card's expiry).
- Amounts must be positive (13); debits beyond the available balance 51; beyond the card's daily limit 61.
- Void, refund, cancel, completion and completion void name their original: by its RRN (host field 56) when
  given, else by field 90 (STAN, local date, time; the latest such transaction of the terminal if its time does
  not match). Missing → 25, another card or terminal → 22, original in the wrong state → 12; a refund may be
  partial but the refunds never exceed the original (13); a completion may exceed its hold by at most
  ``completion_tolerance`` (13 beyond that).
- Reversal: a transaction of its own, keyed in its own space (``REV|`` + acquirer | RRN, since a reversal may
  carry its original's RRN in 37 or one of its own), that applies the inverses of the original's effects and
  marks it reversed; without field 56, a reversal whose 37 is a transaction of the same terminal, STAN and date
  reverses that one. A reversal of an original never seen answers 00 and leaves a *tombstone* under the original's key
  (``acquirer|RRN``; without the RRN, under ``T|`` + its field-90 reference): if the original arrives later it
  is declined with 12 and posts nothing. Reversing twice is harmless (00, nothing more). A reversal of an
  original that was since voided, refunded (even partly), completed or cancelled answers 12: undo those first.
- Forced posting (a scheme's stand-in advice, ``LedgerRequest.forced``): a purchase, pre-authorisation or
  completion the scheme approved in the issuer's place is posted whatever the balance, daily limit, card status
  or expiry say (the account may go negative; only an unknown PAN 14 or a non-positive amount 13 refuse it),
  under the original's key, and recorded with ``Txn.forced``. The original already approved under that key: a
  repeat (its first answer, nothing posted). The original declined under that key (its answer was lost and the
  scheme stood in): posted under ``FORCED|`` + the key, which then stands for the original when a reversal,
  void or refund names it. A repeated advice is a repeat. A forced completion posts as a plain debit: the
  advice does not name the pre-authorisation, whose hold lapses or is cancelled on its own.
- PIN tries (counted here, for every front-end of a pool): a ``PIN_FAILURE`` report (a wrong PIN, under the
  failed request's RRN) counts one failure for the card's business day, whatever the card's state, and is
  answered 55, or 75 from the ``MAX_PIN_FAILURES_PER_DAY``-th on; a retried report is a repeat (counted once).
  A request whose field 22 says a PIN was entered (verified by the front-end) is declined 75 once the card's
  failures that day reach the limit, before any other check (as the front-end did when it counted alone).
- Business date: the request's MMDD (field 13) in the year that puts it closest to the clock's date, so a
  request dated 1231 that arrives on 1 January belongs to the old year.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Final

from core_ledger.api import MAX_PIN_FAILURES_PER_DAY, LedgerAnswer, LedgerOp, LedgerRequest, OriginalRef
from core_ledger.model import (
    CLEARING_ACCOUNT,
    CardStatus,
    DailyUsage,
    Effect,
    Entry,
    HoldChange,
    PinFailure,
    RefundChange,
    StatusChange,
    Txn,
    TxnStatus,
    key_text,
    ref_day,
    ref_text,
)
from core_ledger.state import LedgerState
from wire.constants import ResponseCode
from wire.localdate import business_date
from wire.masking import mask_pan

log = logging.getLogger("acqsim.ledger")

RC = ResponseCode
#: A completion may exceed its pre-authorisation by this fraction (15 %).
DEFAULT_COMPLETION_TOLERANCE: Final = Decimal("0.15")

_CARD_STATUS_CODES: Final = {
    CardStatus.LOST: RC.LOST_CARD,
    CardStatus.STOLEN: RC.STOLEN_CARD,
    CardStatus.BLOCKED: RC.RESTRICTED_CARD,
    CardStatus.RESTRICTED: RC.RESTRICTED_CARD,
}


class Decline(Exception):
    def __init__(self, code: ResponseCode) -> None:
        super().__init__(code.value)
        self.code = code


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    answer: LedgerAnswer
    records: tuple[Txn, ...]  # new transactions to record (none for a repeat)
    effects: tuple[Effect, ...]
    repeat: bool = False


#: Prefix of a reversal's key. A reversal may carry its original's RRN in 37 (common ISO 8583 practice, and what
#: the front-end's timeout reversals do) or an RRN of its own; either way it must not collide with its original.
REVERSAL_KEY_PREFIX: Final = "REV|"
#: Prefix of a forced posting's key when its original was declined under the plain key (kept as it was).
FORCED_KEY_PREFIX: Final = "FORCED|"
#: Prefix of a tombstone's key when the reversal did not name its original's RRN (an older client).
TOMBSTONE_REF_PREFIX: Final = "T|"
#: What a fingerprint holds, in order; a conflict names the parts that differ.
FINGERPRINT_PARTS: Final = ("op", "pan", "amount", "terminal", "target", "original")


def request_key(request: LedgerRequest) -> str:
    """The transaction key of ``request``: acquirer | RRN, in the reversal key space for reversals."""
    base = key_text(request.key)
    return REVERSAL_KEY_PREFIX + base if request.op is LedgerOp.REVERSAL else base


def request_ref(request: LedgerRequest) -> str:
    """The field-90 reference a later request may name ``request`` by."""
    return ref_text((request.acquirer_id, request.terminal_id, request.stan, request.local_date, request.local_time))


def original_ref(request: LedgerRequest, original: OriginalRef) -> str:
    """The field-90 reference of ``original`` (same terminal as ``request``)."""
    return ref_text(
        (original.acquirer_id, request.terminal_id, original.stan, original.local_date, original.local_time)
    )


def fingerprint(request: LedgerRequest) -> str:
    """The content a repeat of the key must match (the parts of :data:`FINGERPRINT_PARTS`, ``;``-separated)."""
    original = request.original
    ref = (original.rrn or f"{original.stan}/{original.local_date}") if original else ""
    parts = (request.op, request.pan, str(request.amount), request.terminal_id, request.target_pan or "", ref)
    return ";".join(parts)


def fingerprint_diff(first: str, repeat: str) -> list[str]:
    """The names of the parts in which two fingerprints differ."""
    a, b = first.split(";"), repeat.split(";")
    if len(a) != len(FINGERPRINT_PARTS) or len(b) != len(FINGERPRINT_PARTS):
        return ["content"]
    return [name for name, x, y in zip(FINGERPRINT_PARTS, a, b, strict=True) if x != y]


def _valid_date(local_date: str) -> bool:
    return len(local_date) == 4 and local_date.isdigit() and 1 <= int(local_date[:2]) <= 12


class LedgerEngine:
    def __init__(
        self,
        state: LedgerState,
        *,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        completion_tolerance: Decimal = DEFAULT_COMPLETION_TOLERANCE,
    ) -> None:
        self.state = state
        self.clock = clock
        self.completion_tolerance = completion_tolerance
        self._auth_counter = len(state.txns)
        #: The clock, read once per decision (:meth:`decide`) so that every date the decision uses agrees, and
        #: (field 13, the business date it names), worked out once per decision.
        self._now = clock()
        self._day_of: tuple[str, str] = ("", "")
        #: Requests refused with 94: a known key with other content.
        self.conflicts = 0

    # --- entry point -------------------------------------------------------------------------------------

    def decide(self, request: LedgerRequest) -> Decision:
        """Decide ``request`` against the current state. The caller applies ``decision.effects`` (via
        :meth:`commit`) before deciding the next request. Never raises for bad input."""
        self._now, self._day_of = self.clock(), ("", "")
        if not _valid_date(request.local_date):
            return self._declined(request, RC.FORMAT_ERROR, record=False)
        if not request.rrn.strip():
            return self._declined(request, RC.FORMAT_ERROR, record=False)  # no key, no exactly-once
        key = request_key(request)
        if request.forced:
            return self._forced(request, key)
        known = self._posted_under(key)
        if known is not None and known.status is not TxnStatus.TOMBSTONE:
            if known.fingerprint == fingerprint(request):
                return Decision(answer=known.answer, records=(), effects=(), repeat=True)
            return self._conflict(request, known)
        if known is not None or TOMBSTONE_REF_PREFIX + request_ref(request) in self.state.txns:
            return self._declined(request, RC.INVALID_TRANSACTION, record=False)  # reversed before it arrived
        try:
            decision = self._decide(request, key)
        except Decline as decline:
            return self._declined(request, decline.code, record=True)
        misfit = self.state.misfit(decision.effects)
        if misfit is not None:
            # Checked before anything is stored: e.g. the reversal of a completion void whose pre-authorisation
            # was cancelled since (its hold is gone). Declined, nothing recorded but the decline.
            log.info("%s RRN %s cannot apply (%s): declined 12", request.op, request.rrn, misfit)
            return self._declined(request, RC.INVALID_TRANSACTION, record=True)
        return decision

    def _forced(self, request: LedgerRequest, key: str) -> Decision:
        """Post what the scheme guaranteed, exactly once (see the module's rules)."""
        known = self._posted_under(key)
        if known is not None and known.status is TxnStatus.TOMBSTONE:
            return self._declined(request, RC.INVALID_TRANSACTION, record=False)  # reversed before it arrived
        if known is not None and known.status is not TxnStatus.DECLINED:
            if known.fingerprint == fingerprint(request):
                return Decision(answer=known.answer, records=(), effects=(), repeat=True)
            return self._conflict(request, known)
        card = self.state.cards.get(request.pan)
        if card is None:
            return self._declined(request, RC.INVALID_CARD, record=False)
        if request.amount <= 0:
            return self._declined(request, RC.INVALID_AMOUNT, record=False)
        target = key if known is None else FORCED_KEY_PREFIX + key
        effects: tuple[Effect, ...]
        if request.op is LedgerOp.PREAUTH:
            effects, status = (HoldChange(target, card.account_id, request.amount, placed=True),), TxnStatus.HELD
        else:
            effects, status = self._spend(request, card.account_id, request.amount), TxnStatus.POSTED
        account = self.state.accounts[card.account_id]
        log.warning(
            "forced %s RRN %s on %s for %d (available %d): posted on the scheme's stand-in advice",
            request.op,
            request.rrn,
            mask_pan(request.pan),
            request.amount,
            account.available,
        )
        auth_code = request.auth_code or self._next_auth_code()
        answer = self._answer(request, RC.APPROVED, card.account_id, auth_code=auth_code, effects=effects)
        txn = dataclasses.replace(self._record(request, target, answer, status, effects), forced=True)
        return Decision(answer=answer, records=(txn,), effects=effects)

    def _posted_under(self, key: str) -> Txn | None:
        """The transaction a key names: its forced posting when one replaced a declined original."""
        return self.state.txns.get(FORCED_KEY_PREFIX + key) or self.state.txns.get(key)

    def commit(self, decision: Decision) -> None:
        for record in decision.records:
            self.state.add_txn(record)
        self.state.apply(decision.effects)

    def _conflict(self, request: LedgerRequest, known: Txn) -> Decision:
        """A known key with other content: refused loudly (94), never answered from the first."""
        self.conflicts += 1
        differs = ", ".join(fingerprint_diff(known.fingerprint, fingerprint(request)))
        log.warning(
            "key conflict: acquirer %s RRN %s already used by %s on %s; this %s differs in %s; refused 94",
            request.acquirer_id,
            request.rrn,
            known.op,
            mask_pan(known.pan),
            request.op,
            differs,
        )
        return self._declined(request, RC.DUPLICATE, record=False)

    # --- helpers -----------------------------------------------------------------------------------------

    def _business_date(self, request: LedgerRequest) -> str:
        local_date, day = self._day_of
        if local_date != request.local_date:
            day = business_date(request.local_date, self._now)
            self._day_of = (request.local_date, day)
        return day

    def _card(self, pan: str, expiry: str | None) -> str:
        card = self.state.cards.get(pan)
        if card is None:
            raise Decline(RC.INVALID_CARD)
        if card.status in _CARD_STATUS_CODES:
            raise Decline(_CARD_STATUS_CODES[card.status])
        now = self._now
        if card.expiry < f"{now.year % 100:02d}{now.month:02d}" or (expiry and expiry != card.expiry):
            raise Decline(RC.EXPIRED_CARD)
        return card.account_id

    def _next_auth_code(self) -> str:
        self._auth_counter += 1
        return f"{self._auth_counter % 1_000_000:06d}"

    def _check_debit(self, request: LedgerRequest, account_id: str, amount: int, *, hold_credit: int = 0) -> None:
        account = self.state.accounts[account_id]
        if amount > account.available + hold_credit:
            raise Decline(RC.INSUFFICIENT_FUNDS)
        limit = self.state.cards[request.pan].daily_limit
        used = self.state.daily.get((request.pan, self._business_date(request)), 0)
        if limit is not None and used + amount > limit:
            raise Decline(RC.EXCEEDS_AMOUNT_LIMIT)

    def _find_original(self, request: LedgerRequest, original: OriginalRef) -> Txn | None:
        """The original by its RRN (host field 56); without it, by field 90 (older clients): the transaction of
        that terminal, STAN and date whose time matches, else the latest of them."""
        if original.rrn.strip():
            return self._posted_under(key_text((request.acquirer_id, original.rrn)))
        ref = original_ref(request, original)
        if request.op is LedgerOp.REVERSAL:  # a reversal that carries its original's RRN in 37
            same = self._posted_under(key_text(request.key))
            if same is not None and same.ref and ref_day(same.ref) == ref_day(ref):
                return same
        candidates = [txn for txn in self.state.txns.by_ref_day(ref_day(ref)) if txn.op is not LedgerOp.REVERSAL]
        exact = [txn for txn in candidates if txn.ref == ref]
        return (exact or candidates)[-1] if candidates else None

    def _original(self, request: LedgerRequest, *, ops: tuple[LedgerOp, ...]) -> Txn:
        if request.original is None:
            raise Decline(RC.FORMAT_ERROR)
        txn = self._find_original(request, request.original)
        if txn is None or txn.status in (TxnStatus.DECLINED, TxnStatus.TOMBSTONE) or txn.op not in ops:
            raise Decline(RC.ORIGINAL_NOT_FOUND)
        if txn.pan != request.pan or txn.terminal_id != request.terminal_id:
            raise Decline(RC.ORIGINAL_MISMATCH)
        return txn

    def _positive(self, request: LedgerRequest) -> int:
        if request.amount <= 0:
            raise Decline(RC.INVALID_AMOUNT)
        return request.amount

    def _answer(
        self,
        request: LedgerRequest,
        code: ResponseCode,
        account_id: str | None,
        *,
        auth_code: str | None = None,
        effects: tuple[Effect, ...] = (),
    ) -> LedgerAnswer:
        balance = available = None
        if account_id is not None:
            account = self.state.accounts[account_id]
            delta = sum(e.amount for e in effects if isinstance(e, Entry) and e.account_id == account_id)
            held = sum(
                (e.amount if e.placed else -e.amount)
                for e in effects
                if isinstance(e, HoldChange) and e.account_id == account_id
            )
            balance = account.balance + delta
            available = balance - (account.held + held)
        return LedgerAnswer(
            response_code=code,
            rrn=request.rrn,
            auth_code=auth_code,
            balance=balance,
            available=available,
            currency=request.currency,
        )

    def _record(
        self,
        request: LedgerRequest,
        key: str,
        answer: LedgerAnswer,
        status: TxnStatus,
        effects: tuple[Effect, ...],
        *,
        original: str | None = None,
    ) -> Txn:
        return Txn(
            key=key,
            op=request.op,
            pan=request.pan,
            amount=request.amount,
            terminal_id=request.terminal_id,
            merchant_id=request.merchant_id,
            business_date=self._business_date(request),
            rrn=request.rrn,
            fingerprint=fingerprint(request),
            ref=request_ref(request),
            answer=answer,
            status=status,
            original=original,
            auth_code=answer.auth_code,
            effects=effects,
        )

    def _declined(self, request: LedgerRequest, code: ResponseCode, *, record: bool) -> Decision:
        answer = LedgerAnswer(response_code=code, rrn=request.rrn, currency=request.currency)
        records = (self._record(request, request_key(request), answer, TxnStatus.DECLINED, ()),) if record else ()
        return Decision(answer=answer, records=records, effects=())

    def _approved(
        self,
        request: LedgerRequest,
        key: str,
        account_id: str | None,
        effects: tuple[Effect, ...],
        *,
        status: TxnStatus = TxnStatus.POSTED,
        original: str | None = None,
        auth: bool = True,
    ) -> Decision:
        auth_code = self._next_auth_code() if auth else None
        answer = self._answer(request, RC.APPROVED, account_id, auth_code=auth_code, effects=effects)
        txn = self._record(request, key, answer, status, effects, original=original)
        return Decision(answer=answer, records=(txn,), effects=effects)

    def _spend(self, request: LedgerRequest, account_id: str, amount: int) -> tuple[Effect, ...]:
        return (
            Entry(account_id, -amount),
            Entry(CLEARING_ACCOUNT, amount),
            DailyUsage(request.pan, self._business_date(request), amount),
        )

    # --- operations ----------------------------------------------------------------------------------------

    def _decide(self, request: LedgerRequest, key: str) -> Decision:
        if request.op is LedgerOp.REVERSAL:
            return self._reversal(request, key)
        if request.op is LedgerOp.PIN_FAILURE:
            return self._pin_failure(request, key)
        if request.pin_entered and self._pin_failures_today(request) >= MAX_PIN_FAILURES_PER_DAY:
            raise Decline(RC.PIN_TRIES_EXCEEDED)
        account_id = self._card(request.pan, request.expiry)
        handler = {
            LedgerOp.BALANCE: self._balance,
            LedgerOp.PURCHASE: self._purchase,
            LedgerOp.PREAUTH: self._preauth,
            LedgerOp.PREAUTH_CANCEL: self._preauth_cancel,
            LedgerOp.PREAUTH_COMPLETION: self._completion,
            LedgerOp.PREAUTH_COMPLETION_VOID: self._completion_void,
            LedgerOp.VOID: self._void,
            LedgerOp.REFUND: self._refund,
            LedgerOp.TRANSFER: self._transfer,
        }[request.op]
        return handler(request, key, account_id)

    def _pin_failures_today(self, request: LedgerRequest) -> int:
        return self.state.pin_failures.get((request.pan, self._business_date(request)), 0)

    def _pin_failure(self, request: LedgerRequest, key: str) -> Decision:
        """A wrong PIN counted for the card's business day; the answer is the code the terminal gets."""
        failures = self._pin_failures_today(request) + 1
        code = RC.PIN_TRIES_EXCEEDED if failures >= MAX_PIN_FAILURES_PER_DAY else RC.INCORRECT_PIN
        log.info(
            "wrong PIN on %s, RRN %s: failure %d today, answered %s", mask_pan(request.pan), request.rrn, failures, code
        )
        answer = LedgerAnswer(response_code=code, rrn=request.rrn, currency=request.currency)
        effects: tuple[Effect, ...] = (PinFailure(request.pan, self._business_date(request)),)
        return Decision(
            answer=answer,
            records=(self._record(request, key, answer, TxnStatus.DECLINED, effects),),
            effects=effects,
        )

    def _balance(self, request: LedgerRequest, key: str, account_id: str) -> Decision:
        return self._approved(request, key, account_id, (), auth=False)

    def _purchase(self, request: LedgerRequest, key: str, account_id: str) -> Decision:
        amount = self._positive(request)
        self._check_debit(request, account_id, amount)
        return self._approved(request, key, account_id, self._spend(request, account_id, amount))

    def _preauth(self, request: LedgerRequest, key: str, account_id: str) -> Decision:
        amount = self._positive(request)
        self._check_debit(request, account_id, amount)
        effects: tuple[Effect, ...] = (HoldChange(key, account_id, amount, placed=True),)
        return self._approved(request, key, account_id, effects, status=TxnStatus.HELD)

    def _held_preauth(self, request: LedgerRequest) -> tuple[Txn, int]:
        """The pre-authorisation a cancel or completion refers to, still held, and the amount it holds.
        Declines one that is not held any more (cancelled, completed) or whose approval code differs."""
        original = self._original(request, ops=(LedgerOp.PREAUTH,))
        if original.status is not TxnStatus.HELD:
            raise Decline(RC.INVALID_TRANSACTION)
        if request.auth_code and request.auth_code != original.auth_code:
            raise Decline(RC.ORIGINAL_MISMATCH)
        _, held = self.state.holds[original.key]
        return original, held

    def _preauth_cancel(self, request: LedgerRequest, key: str, account_id: str) -> Decision:
        original, held = self._held_preauth(request)
        effects: tuple[Effect, ...] = (
            HoldChange(original.key, account_id, held, placed=False),
            StatusChange(original.key, TxnStatus.HELD, TxnStatus.CANCELLED),
        )
        return self._approved(request, key, account_id, effects, original=original.key)

    def _completion(self, request: LedgerRequest, key: str, account_id: str) -> Decision:
        amount = self._positive(request)
        original, held = self._held_preauth(request)
        if Decimal(amount) > Decimal(held) * (1 + self.completion_tolerance):
            raise Decline(RC.INVALID_AMOUNT)
        self._check_debit(request, account_id, amount, hold_credit=held)
        effects = (
            HoldChange(original.key, account_id, held, placed=False),
            StatusChange(original.key, TxnStatus.HELD, TxnStatus.COMPLETED),
            *self._spend(request, account_id, amount),
        )
        return self._approved(request, key, account_id, effects, original=original.key)

    def _undo_spend(self, request: LedgerRequest, original: Txn, amount: int) -> tuple[Effect, ...]:
        account_id = self.state.cards[original.pan].account_id
        return (
            Entry(CLEARING_ACCOUNT, -amount),
            Entry(account_id, amount),
            DailyUsage(original.pan, original.business_date, -amount),
        )

    def _void(self, request: LedgerRequest, key: str, account_id: str) -> Decision:
        original = self._original(request, ops=(LedgerOp.PURCHASE,))
        if original.status is not TxnStatus.POSTED or original.refunded:
            raise Decline(RC.INVALID_TRANSACTION)
        if request.amount and request.amount != original.amount:
            raise Decline(RC.ORIGINAL_MISMATCH)
        effects = (
            StatusChange(original.key, TxnStatus.POSTED, TxnStatus.VOIDED),
            *self._undo_spend(request, original, original.amount),
        )
        return self._approved(request, key, account_id, effects, original=original.key)

    def _completion_void(self, request: LedgerRequest, key: str, account_id: str) -> Decision:
        completion = self._original(request, ops=(LedgerOp.PREAUTH_COMPLETION,))
        if completion.status is not TxnStatus.POSTED or completion.refunded or completion.original is None:
            raise Decline(RC.INVALID_TRANSACTION)
        preauth = self.state.txns[completion.original]
        hold = next(e for e in preauth.effects if isinstance(e, HoldChange))
        effects = (
            StatusChange(completion.key, TxnStatus.POSTED, TxnStatus.VOIDED),
            *self._undo_spend(request, completion, completion.amount),
            StatusChange(preauth.key, TxnStatus.COMPLETED, TxnStatus.HELD),
            HoldChange(preauth.key, account_id, hold.amount, placed=True),  # the hold comes back
        )
        return self._approved(request, key, account_id, effects, original=completion.key)

    def _refund(self, request: LedgerRequest, key: str, account_id: str) -> Decision:
        amount = self._positive(request)
        original = self._original(request, ops=(LedgerOp.PURCHASE, LedgerOp.PREAUTH_COMPLETION))
        if original.status is not TxnStatus.POSTED:
            raise Decline(RC.INVALID_TRANSACTION)
        if original.refunded + amount > original.amount:
            raise Decline(RC.INVALID_AMOUNT)
        effects: tuple[Effect, ...] = (
            RefundChange(original.key, amount),
            Entry(CLEARING_ACCOUNT, -amount),
            Entry(account_id, amount),
        )
        return self._approved(request, key, account_id, effects, original=original.key)

    def _transfer(self, request: LedgerRequest, key: str, account_id: str) -> Decision:
        amount = self._positive(request)
        if not request.target_pan:
            raise Decline(RC.FORMAT_ERROR)
        target = self.state.cards.get(request.target_pan)
        if target is None or target.status is not CardStatus.GOOD or target.account_id == account_id:
            raise Decline(RC.INVALID_CARD)
        self._check_debit(request, account_id, amount)
        effects: tuple[Effect, ...] = (
            Entry(account_id, -amount),
            Entry(target.account_id, amount),
            DailyUsage(request.pan, self._business_date(request), amount),
        )
        return self._approved(request, key, account_id, effects)

    def _reversal(self, request: LedgerRequest, key: str) -> Decision:
        if request.original is None:
            raise Decline(RC.FORMAT_ERROR)
        original = self._find_original(request, request.original)
        account_id = self.state.cards[request.pan].account_id if request.pan in self.state.cards else None
        if original is None:
            # Never seen: remember it so that a late original is refused (a tombstone).
            if request.original.rrn.strip():
                target_key = key_text((request.acquirer_id, request.original.rrn))
            else:
                target_key = TOMBSTONE_REF_PREFIX + original_ref(request, request.original)
            answer = LedgerAnswer(response_code=RC.APPROVED, rrn=request.rrn, currency=request.currency)
            tombstone = dataclasses.replace(
                self._record(request, target_key, answer, TxnStatus.TOMBSTONE, ()),
                fingerprint="tombstone",
                ref="",
            )
            reversal = self._record(request, key, answer, TxnStatus.POSTED, (), original=target_key)
            return Decision(answer=answer, records=(tombstone, reversal), effects=())
        if original.status in (TxnStatus.REVERSED, TxnStatus.DECLINED, TxnStatus.TOMBSTONE):
            return self._approved(request, key, account_id, (), original=original.key, auth=False)
        if original.pan != request.pan or original.terminal_id != request.terminal_id:
            raise Decline(RC.ORIGINAL_MISMATCH)
        if original.status not in (TxnStatus.POSTED, TxnStatus.HELD) or original.refunded:
            raise Decline(RC.INVALID_TRANSACTION)  # voided / refunded / completed / cancelled: undo those first
        inverse = tuple(e.inverse() for e in reversed(original.effects))
        effects = (*inverse, StatusChange(original.key, original.status, TxnStatus.REVERSED))
        return self._approved(request, key, account_id, effects, original=original.key, auth=False)
