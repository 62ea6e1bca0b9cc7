"""What the merchant platform's ``acqsim.txn`` record shows of one decision (docs/logging.md): the merchant,
the amount, the till's reference, the method of a sale, a notice's kind; coupon and voucher codes and phone
numbers masked (first 4, last 4: a code is a bearer token, a phone number personal data). Never a card
fingerprint."""

from __future__ import annotations

from collections.abc import Mapping

from wire.field59 import mask_code
from wire.tlvlink import LinkMessage


def _masked(request: LinkMessage, answer: LinkMessage, tag: str) -> str | None:
    value = request.get(tag) or answer.get(tag)
    return mask_code(value) if value else None


def merchant_txn_fields(request: LinkMessage, answer: LinkMessage) -> Mapping[str, str | None]:
    return {
        "merchant_id": request.get("MI"),
        "amount": request.get("AM") or answer.get("AM"),
        "reference": request.get("ER"),
        "method": request.get("PY"),
        "notice": request.get("MK"),
        "coupon": _masked(request, answer, "CP"),
        "group_voucher": _masked(request, answer, "GV"),
        "phone": _masked(request, answer, "PH"),
        "booking": request.get("BK") or answer.get("BK"),
    }
