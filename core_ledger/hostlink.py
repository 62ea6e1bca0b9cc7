"""The host link (PROTOCOL.md §2): LedgerRequest / LedgerAnswer ↔ ISO 8583:1987 ASCII fields.

Requests — MTI / 3 / 25 per operation (the ledger reads the operation back from the same table):

    balance                  0200 310000 00      purchase            0200 000000 00
    pre-authorisation        0100 030000 06      pre-auth cancel     0100 200000 06
    pre-auth completion      0200 000000 06      completion void     0200 200000 06
    void                     0200 200000 00      refund              0220 200000 00
    transfer                 0200 400000 00      reversal            0400 000000 00
    forced posting           0120 with the 3 / 25 of a purchase, pre-authorisation or completion: a scheme's
                             stand-in advice the issuer's ledger posts whatever its checks say (answered 0130)
    wrong PIN report         0220 900000 00      the failed request's fields under its own RRN (answered 0230:
                             39 = 55, or 75 from the card's 3rd failure of the business day); host link only

Fields: 2 PAN, 3, 4 amount (n12), 7 transmission MMDDhhmmss, 11 STAN, 12 hhmmss, 13 MMDD, 14 expiry, 22, 25,
32 acquirer, 37 RRN (the front-end's transaction id: with 32, the ledger's idempotency key), 38 pre-auth code
(cancel / completion), 41, 42, 48 target PAN (transfer), 49, and on requests that name an original: 56 the
original's RRN (an12, LLLVAR; ISO 8583:1993 puts "original data elements" in 56, and the ledger finds the
original by it) and 90 for information and for older clients that do not send 56: original MTI n4 ‖ STAN n6 ‖
MMDDhhmmss n10 ‖ acquirer n11 ‖ forwarding n11 (zeros). Answers: MTI + 10, the request's
2/3/4/11/12/13/32/37/41 echoed (37 as the ledger's answer), 38 when authorised, 39, and 54 with the ledger
balance (amount type 01) and the available balance (02) in ISO additional-amount format. An answer is matched
to its request by MTI class, 32 and 37 (:func:`match_key`).
"""

from __future__ import annotations

import dataclasses
from typing import Final

from core_ledger.api import (
    FORCEABLE_OPS,
    ROUTES,
    LedgerAnswer,
    LedgerOp,
    LedgerRequest,
    OriginalRef,
    forced_op_for_codes,
    host_op_for_route,
)
from wire.codec import Fields
from wire.constants import ConditionCode, Mti, ResponseCode, response_mti
from wire.errors import MessageDecodeError
from wire.fields import AMOUNT_TYPE_AVAILABLE, AMOUNT_TYPE_LEDGER, AdditionalAmount, read_additional_amounts

CC = ConditionCode

#: The host field carrying the original's RRN on requests that name an original.
ORIGINAL_RRN_FIELD: Final = "56"
#: An RRN is an12 (field 37).
RRN_LEN: Final = 12


def _encode_original(original: OriginalRef) -> str:
    return (
        f"{original.mti}{original.stan}{original.local_date}{original.local_time}{original.acquirer_id:0>11}{'0' * 11}"
    )


def _decode_original(value: str) -> OriginalRef:
    if len(value) != 42 or not value.isdigit():
        raise MessageDecodeError("field 90 must be 42 digits", field="90")
    return OriginalRef(
        mti=value[0:4],
        stan=value[4:10],
        local_date=value[10:14],
        local_time=value[14:20],
        acquirer_id=value[20:31].lstrip("0") or "0",
    )


def request_fields(request: LedgerRequest) -> Fields:
    mti, processing, condition = ROUTES[request.op]
    fields: Fields = {
        "t": mti,
        "2": request.pan,
        "3": processing,
        "4": f"{request.amount:012d}",
        "7": request.transmission,
        "11": request.stan,
        "12": request.local_time,
        "13": request.local_date,
        "25": condition,
        "32": request.acquirer_id,
        "37": request.rrn,
        "41": request.terminal_id,
        "42": request.merchant_id,
        "49": request.currency,
    }
    if request.op is LedgerOp.PREAUTH_COMPLETION and request.condition_code != CC.PREAUTH:
        fields["25"] = request.condition_code
    if request.forced:
        if request.op not in FORCEABLE_OPS:
            raise ValueError(f"a {request.op} cannot be posted forced")
        fields["t"], fields["25"] = Mti.STAND_IN_ADVICE, condition  # 3 and 25 alone name the operation
    optional = {"14": request.expiry, "22": request.pos_entry_mode, "38": request.auth_code, "48": request.target_pan}
    fields.update({k: v for k, v in optional.items() if v})
    if request.original is not None:
        fields["90"] = _encode_original(request.original)
        if request.original.rrn.strip():
            fields[ORIGINAL_RRN_FIELD] = request.original.rrn
    return fields


def _need(fields: Fields, key: str) -> str:
    if key not in fields:
        raise MessageDecodeError("mandatory field missing", field=key)
    return fields[key]


def _decode_original_ref(fields: Fields) -> OriginalRef | None:
    if "90" not in fields:
        if ORIGINAL_RRN_FIELD in fields:
            raise MessageDecodeError("field 56 (original RRN) without field 90", field=ORIGINAL_RRN_FIELD)
        return None
    original = _decode_original(fields["90"])
    rrn = fields.get(ORIGINAL_RRN_FIELD, "")
    if rrn and len(rrn) != RRN_LEN:
        raise MessageDecodeError(f"original RRN must be {RRN_LEN} characters", field=ORIGINAL_RRN_FIELD)
    return dataclasses.replace(original, rrn=rrn)


def request_from_fields(fields: Fields) -> LedgerRequest:
    forced = fields.get("t") == Mti.STAND_IN_ADVICE
    codes = (fields.get("3", ""), fields.get("25", CC.NORMAL))
    op = forced_op_for_codes(*codes) if forced else host_op_for_route(fields.get("t", ""), *codes)
    if op is None:
        raise MessageDecodeError("no ledger operation for this MTI / processing code / condition code", field="3")
    amount = _need(fields, "4")
    if not amount.isdigit():
        raise MessageDecodeError("amount must be digits", field="4")
    return LedgerRequest(
        op=op,
        acquirer_id=_need(fields, "32"),
        terminal_id=_need(fields, "41"),
        merchant_id=fields.get("42", ""),
        stan=_need(fields, "11"),
        local_time=_need(fields, "12"),
        local_date=_need(fields, "13"),
        transmission=fields.get("7", ""),
        pan=_need(fields, "2"),
        rrn=_need(fields, "37"),
        amount=int(amount),
        currency=fields.get("49", "156"),
        expiry=fields.get("14"),
        pos_entry_mode=fields.get("22"),
        condition_code=fields.get("25", CC.NORMAL),
        auth_code=fields.get("38"),
        original=_decode_original_ref(fields),
        target_pan=fields.get("48"),
        forced=forced,
    )


def answer_fields(request_fields_: Fields, answer: LedgerAnswer) -> Fields:
    fields: Fields = {
        k: request_fields_[k] for k in ("2", "3", "4", "11", "12", "13", "32", "41") if k in request_fields_
    }
    fields["t"] = response_mti(request_fields_.get("t", Mti.FINANCIAL_REQUEST))
    fields["37"] = answer.rrn
    fields["39"] = answer.response_code.value
    if answer.auth_code:
        fields["38"] = answer.auth_code
    amounts = []
    if answer.balance is not None:
        amounts.append(
            AdditionalAmount(amount=answer.balance, amount_type=AMOUNT_TYPE_LEDGER, currency=answer.currency)
        )
    if answer.available is not None:
        amounts.append(
            AdditionalAmount(amount=answer.available, amount_type=AMOUNT_TYPE_AVAILABLE, currency=answer.currency)
        )
    if amounts:
        fields["54"] = AdditionalAmount.encode_many(amounts)
    return fields


def answer_from_fields(fields: Fields) -> LedgerAnswer:
    code = _need(fields, "39")
    try:
        response = ResponseCode(code)
    except ValueError:
        raise MessageDecodeError("unknown response code", field="39") from None
    balance = available = None
    currency = "156"
    for amount_type, entry_currency, amount in read_additional_amounts(fields.get("54", "")):
        currency = entry_currency  # the last entry's, as before
        if amount_type == AMOUNT_TYPE_LEDGER:
            balance = amount
        elif amount_type == AMOUNT_TYPE_AVAILABLE:
            available = amount
    return LedgerAnswer(
        response_code=response,
        rrn=fields.get("37", ""),
        auth_code=fields.get("38"),
        balance=balance,
        available=available,
        currency=currency,
    )


def match_key(fields: Fields) -> tuple[str, str, str]:
    """What pairs an answer with its request on a shared connection: MTI class, 32, 37 — the transaction."""
    return (fields.get("t", "")[:2], fields.get("32", ""), fields.get("37", ""))
