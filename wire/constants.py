"""Named constants of the acqsim message set (PROTOCOL.md §1, §3a).

One place for each fact: services compare against these names, never against literal strings.
"""

from __future__ import annotations

import enum
from typing import Final


class Mti(enum.StrEnum):
    AUTH_REQUEST = "0100"  # pre-authorisation, pre-auth cancel
    AUTH_RESPONSE = "0110"
    FINANCIAL_REQUEST = "0200"  # balance, purchase, void, completion, transfer
    FINANCIAL_RESPONSE = "0210"
    ADVICE = "0220"  # refund, pre-auth completion advice
    ADVICE_RESPONSE = "0230"
    STAND_IN_ADVICE = "0120"  # switch → issuer: what the switch approved in the issuer's place (docs/scheme.md)
    STAND_IN_ADVICE_RESPONSE = "0130"
    BATCH_UPLOAD = "0320"
    BATCH_UPLOAD_RESPONSE = "0330"
    REVERSAL = "0400"
    REVERSAL_RESPONSE = "0410"
    SETTLEMENT = "0500"
    SETTLEMENT_RESPONSE = "0510"
    NETWORK_REQUEST = "0800"  # sign-on
    NETWORK_RESPONSE = "0810"
    NETWORK_ADVICE = "0820"  # sign-off, echo test
    NETWORK_ADVICE_RESPONSE = "0830"
    SCRIPT_ADVICE = "0620"  # issuer-script result advice (PROTOCOL.md §7)
    SCRIPT_ADVICE_RESPONSE = "0630"


def response_mti(request: str) -> str:
    """The MTI of the answer to ``request``: the third digit plus one (0200 → 0210)."""
    if len(request) != 4 or not request.isdigit() or int(request[2]) % 2:
        raise ValueError(f"{request!r} is not a request MTI")
    return request[:2] + str(int(request[2]) + 1) + request[3]


class ProcessingCode(enum.StrEnum):
    """Field 3."""

    PURCHASE = "000000"
    PREAUTH = "030000"
    VOID = "200000"  # void, refund, pre-auth cancel, completion void
    BALANCE = "310000"
    TRANSFER = "400000"
    #: Host link only: a wrong PIN reported to the card's ledger (0220), which counts the card's failures for
    #: every front-end of a pool. ISO 8583:1987 leaves processing codes 90–99 to private use.
    PIN_FAILURE = "900000"


#: Field 22's third digit when the cardholder entered a PIN (PROTOCOL.md §7; ``2``: no PIN). On the host link it
#: tells the ledger the request's PIN was verified (a wrong one never reaches it as a posting).
PIN_ENTERED: Final = "1"


class ConditionCode(enum.StrEnum):
    """Field 25, POS condition code."""

    NORMAL = "00"
    PREAUTH = "06"


class TxnType(enum.StrEnum):
    """Field 60.1, the message type code."""

    NETWORK = "00"  # sign-on/off, echo, settlement, batch upload
    BALANCE = "01"
    PREAUTH = "10"
    PREAUTH_CANCEL = "11"
    PREAUTH_COMPLETION = "20"
    PREAUTH_COMPLETION_VOID = "21"
    PURCHASE = "22"
    VOID = "23"
    PREAUTH_COMPLETION_ADVICE = "24"
    REFUND = "25"
    TRANSFER = "49"
    # acqsim's own, for the consumer-scans-merchant QR flow (主扫, docs/qr.md): PROTOCOL.md §9 names none.
    QR_ORDER = "70"  # 0200 / 000000: create an order QR for field 4
    QR_QUERY = "71"  # 0200 / 310000: how did a QR payment (A4) or order (QO) end?
    QR_ORDER_CANCEL = "72"  # 0200 / 200000: close an unpaid order (QO)


class NetworkCode(enum.StrEnum):
    """Field 60.3, the network management information code."""

    NONE = "000"
    SIGN_OFF = "002"
    SIGN_ON_DOUBLE_KEYS = "003"
    SIGN_ON_WITH_TDK = "004"
    SETTLEMENT = "201"
    BATCH_UPLOAD = "201"
    END_OF_BATCH_UPLOAD = "202"
    CHIP_BATCH_UPLOAD_BALANCED = "203"  # chip batch upload (0320 with 55) after a balanced settlement
    CHIP_BATCH_UPLOAD_UNBALANCED = "205"  # … after an unbalanced one
    SCRIPT_RESULT_ADVICE = "951"  # 0620 issuer-script result advice
    ECHO = "301"


class ResponseCode(enum.StrEnum):
    """Field 39 (PROTOCOL.md §3a). ``meaning`` gives the text shown to people."""

    APPROVED = "00"
    INVALID_MERCHANT = "03"
    DO_NOT_HONOUR = "05"
    INVALID_TRANSACTION = "12"
    INVALID_AMOUNT = "13"
    INVALID_CARD = "14"
    ORIGINAL_MISMATCH = "22"
    ORIGINAL_NOT_FOUND = "25"
    FORMAT_ERROR = "30"
    ISSUER_UNAVAILABLE = "91"  # the scheme switch: issuer or switch inoperative (no stand-in)
    FUNCTION_NOT_SUPPORTED = "40"
    LOST_CARD = "41"
    STOLEN_CARD = "43"
    INSUFFICIENT_FUNDS = "51"
    EXPIRED_CARD = "54"
    INCORRECT_PIN = "55"
    NOT_PERMITTED_TO_TERMINAL = "58"
    EXCEEDS_AMOUNT_LIMIT = "61"
    RESTRICTED_CARD = "62"
    EXCEEDS_FREQUENCY_LIMIT = "65"
    PIN_TRIES_EXCEEDED = "75"
    BATCH_MISMATCH = "77"
    DUPLICATE = "94"
    SYSTEM_MALFUNCTION = "96"
    CORE_TIMEOUT = "98"
    PIN_FORMAT_ERROR = "99"
    MAC_FAILED = "A0"

    @property
    def meaning(self) -> str:
        return RESPONSE_MEANINGS[self]


RESPONSE_MEANINGS: Final[dict[ResponseCode, str]] = {
    ResponseCode.APPROVED: "approved",
    ResponseCode.INVALID_MERCHANT: "invalid merchant",
    ResponseCode.DO_NOT_HONOUR: "do not honour",
    ResponseCode.INVALID_TRANSACTION: "invalid transaction",
    ResponseCode.INVALID_AMOUNT: "invalid amount",
    ResponseCode.INVALID_CARD: "invalid card number",
    ResponseCode.ORIGINAL_MISMATCH: "original does not match",
    ResponseCode.ORIGINAL_NOT_FOUND: "original not found",
    ResponseCode.FORMAT_ERROR: "format error",
    ResponseCode.ISSUER_UNAVAILABLE: "issuer or switch inoperative",
    ResponseCode.FUNCTION_NOT_SUPPORTED: "function not supported",
    ResponseCode.LOST_CARD: "lost card, pick up",
    ResponseCode.STOLEN_CARD: "stolen card, pick up",
    ResponseCode.INSUFFICIENT_FUNDS: "insufficient funds",
    ResponseCode.EXPIRED_CARD: "expired card",
    ResponseCode.INCORRECT_PIN: "incorrect PIN",
    ResponseCode.NOT_PERMITTED_TO_TERMINAL: "transaction not permitted to terminal",
    ResponseCode.EXCEEDS_AMOUNT_LIMIT: "exceeds amount limit",
    ResponseCode.RESTRICTED_CARD: "restricted card",
    ResponseCode.EXCEEDS_FREQUENCY_LIMIT: "exceeds frequency limit",
    ResponseCode.PIN_TRIES_EXCEEDED: "PIN tries exceeded",
    ResponseCode.BATCH_MISMATCH: "batch number mismatch: sign on again",
    ResponseCode.DUPLICATE: "duplicate transmission",
    ResponseCode.SYSTEM_MALFUNCTION: "system malfunction",
    ResponseCode.CORE_TIMEOUT: "no answer from the core in time",
    ResponseCode.PIN_FORMAT_ERROR: "PIN format error",
    ResponseCode.MAC_FAILED: "MAC check failed: sign on again",
}


class ReversalReason(enum.StrEnum):
    """Field 39 of a terminal's 0400: why the terminal reverses."""

    NO_ANSWER = "98"
    TERMINAL_MALFUNCTION = "96"
    ANSWER_MAC_FAILED = "A0"
    OTHER = "06"


#: Fields an answer echoes from its request (the front-end's answers, and any scripted answer of a rules file).
ANSWER_ECHOED_FIELDS: Final = ("2", "3", "4", "11", "14", "22", "23", "25", "41", "42", "48", "49", "60", "61")

#: Answers to a reversal that end it (PROTOCOL.md §1 "Reversals").
REVERSAL_DONE_CODES: Final = frozenset(
    {ResponseCode.APPROVED, ResponseCode.INVALID_TRANSACTION, ResponseCode.ORIGINAL_NOT_FOUND}
)

#: Field 53 for ISO 9564 format 0 PIN blocks under a double-length TDES PIK.
SECURITY_CONTROL_FORMAT0_TDES: Final = "2600000000000000"
#: Field 49 currency: CNY.
CURRENCY_CNY: Final = "156"
#: Field 63.1 card organisation.
CARD_ORG_CUP: Final = "CUP"

#: Field 22 POS entry modes.
ENTRY_SWIPE_WITH_PIN: Final = "021"
ENTRY_SWIPE_NO_PIN: Final = "022"
ENTRY_CHIP_WITH_PIN: Final = "051"
ENTRY_CHIP_NO_PIN: Final = "052"
ENTRY_CONTACTLESS_WITH_PIN: Final = "071"
ENTRY_CONTACTLESS_NO_PIN: Final = "072"
ENTRY_FALLBACK_WITH_PIN: Final = "801"  # chip failed, stripe read (60.5 = 2)
ENTRY_FALLBACK_NO_PIN: Final = "802"
#: Field 60.4 terminal read capability and 60.5 chip condition (PROTOCOL.md §7).
READ_CAPABILITY_STRIPE_CONTACT_CONTACTLESS: Final = "6"
CHIP_CONDITION_NORMAL: Final = "0"
CHIP_CONDITION_FALLBACK: Final = "2"
#: Field 53 for a terminal that also encrypts tracks under the TDK (PROTOCOL.md §8).
SECURITY_CONTROL_FORMAT0_TDES_TDK: Final = "2610000000000000"
#: Field 53 of an MPOS request whose PIN block is under a DUKPT PIN key and whose track 2 travels in 62 under the
#: DUKPT data key (acqsim's own value: format 0, double-length TDES, third digit 2 = DUKPT data in 62).
SECURITY_CONTROL_DUKPT: Final = "2620000000000000"
#: Field 26 PIN capture code: at most 6 PIN digits.
PIN_CAPTURE_6: Final = "06"
