"""What the wallet host's ``acqsim.txn`` record shows of one decision (docs/logging.md): the merchant, the
amount, the payment code masked (first 4, last 4: a live code is a bearer token), the voucher and order
numbers. Never the password (``PW``) nor the consumer's account."""

from __future__ import annotations

from collections.abc import Mapping

from wire.field59 import mask_code
from wire.tlvlink import LinkMessage


def wallet_txn_fields(request: LinkMessage, answer: LinkMessage) -> Mapping[str, str | None]:
    code = request.get("A3") or answer.get("A3")
    return {
        "merchant_id": request.get("MI"),
        "amount": request.get("AM") or answer.get("AM"),
        "payment_code": mask_code(code) if code else None,
        "voucher": request.get("A4") or answer.get("A4"),
        "order": request.get("QO") or answer.get("QO"),
    }
