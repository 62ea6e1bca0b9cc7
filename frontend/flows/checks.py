"""What a request is (PROTOCOL.md §1: MTI / 3 / 60.1 / 60.3) and what it carries: its kind, its card number,
its PVV, whether a PIN was entered, and whether it has every field its kind needs."""

from __future__ import annotations

from typing import Final

from frontend.messages import EXTRA_REQUIRED, FINANCIAL, FINANCIAL_REQUIRED, MANAGEMENT, QR_TWINS, Kind
from wire.constants import PIN_ENTERED, Mti, ResponseCode
from wire.field59 import ENTRY_QR
from wire.fields import TRACK_SEPARATOR, track2_pvv
from wire.posmessage import PosMessage

#: A PAN is 12 to 19 digits (ISO/IEC 7812); anything else in field 2 or track 2 is a format error.
PAN_DIGITS: Final = range(12, 20)
_REQUEST_MTIS: Final = frozenset(Mti)
_MANAGEMENT_MTIS: Final = frozenset(
    {Mti.NETWORK_REQUEST, Mti.NETWORK_ADVICE, Mti.SETTLEMENT, Mti.BATCH_UPLOAD, Mti.SCRIPT_ADVICE}
)
_FINANCIAL_MTIS: Final = frozenset({Mti.FINANCIAL_REQUEST, Mti.AUTH_REQUEST, Mti.ADVICE})
#: Every field each kind requires (FINANCIAL_REQUIRED and the kind's EXTRA_REQUIRED), as a set.
_REQUIRED_BY_KIND: Final = {kind: frozenset(FINANCIAL_REQUIRED + EXTRA_REQUIRED.get(kind, ())) for kind in Kind}


def is_request_mti(mti: str) -> bool:
    """A request or advice MTI (third digit even); answers (0210, 0410, …) are never requests."""
    return len(mti) == 4 and mti.isdigit() and int(mti[2]) % 2 == 0


def classify(request: PosMessage) -> Kind | ResponseCode:
    """The request's kind; else 40 for an MTI we do not serve, 30 for a missing or malformed field 60, 12 for
    a known MTI whose type (field 3, 60.1, 60.3) we do not know."""
    mti = request.mti
    if mti not in _REQUEST_MTIS:
        return ResponseCode.FUNCTION_NOT_SUPPORTED
    f60 = request.field60
    if f60 is None:
        return ResponseCode.FORMAT_ERROR
    if mti == Mti.REVERSAL:
        return Kind.REVERSAL
    if mti in _MANAGEMENT_MTIS:
        return MANAGEMENT.get((mti, f60.network_code), ResponseCode.INVALID_TRANSACTION)
    if mti in _FINANCIAL_MTIS:
        kind = FINANCIAL.get((mti, request.get("3"), f60.txn_type), ResponseCode.INVALID_TRANSACTION)
        if request.get("22") == ENTRY_QR and isinstance(kind, Kind):
            return QR_TWINS.get(kind, kind)
        return kind
    return ResponseCode.FUNCTION_NOT_SUPPORTED


def card_number(request: PosMessage) -> str | None:
    """The PAN from field 2, else from track 2; ``None`` when neither holds a well-formed one."""
    if "2" in request:
        pan = request.fields["2"]
    elif "35" in request:
        pan = request.fields["35"].split(TRACK_SEPARATOR)[0]
    else:
        return None
    return pan if pan.isdigit() and len(pan) in PAN_DIGITS else None


def track_pvv(request: PosMessage) -> tuple[str, str] | None:
    """PVKI and PVV from track 2: ``PAN=YYMM SSS K VVVV …`` (PROTOCOL.md §1)."""
    return track2_pvv(request.get("35"))


def pin_entered(request: PosMessage) -> bool:
    """Field 22 says the cardholder entered a PIN."""
    return request.get("22")[-1:] == PIN_ENTERED


def well_formed_financial(request: PosMessage, kind: Kind) -> bool:
    """A card number, every field the kind requires, and a PIN block when field 22 says a PIN was entered."""
    # dict keys >= a set: one C-level walk (a generator over ``field in request`` cost 2–3 µs a purchase)
    if card_number(request) is None or not request.fields.keys() >= _REQUIRED_BY_KIND[kind]:
        return False
    return not (pin_entered(request) and "52" not in request)
