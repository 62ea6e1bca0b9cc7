"""Which message is which (MTI / field 3 / 60.1 / 60.3, PROTOCOL.md §1) and what each must carry."""

from __future__ import annotations

import enum
from typing import Final

from core_ledger.api import LedgerOp
from wire.constants import Mti, NetworkCode, ProcessingCode, TxnType


class Kind(enum.StrEnum):
    SIGN_ON = "sign_on"
    SIGN_OFF = "sign_off"
    ECHO = "echo"
    BALANCE = "balance"
    PURCHASE = "purchase"
    VOID = "void"
    REFUND = "refund"
    PREAUTH = "preauth"
    PREAUTH_CANCEL = "preauth_cancel"
    PREAUTH_COMPLETION = "preauth_completion"
    PREAUTH_COMPLETION_ADVICE = "preauth_completion_advice"
    PREAUTH_COMPLETION_VOID = "preauth_completion_void"
    TRANSFER = "transfer"
    REVERSAL = "reversal"
    SETTLEMENT = "settlement"
    BATCH_UPLOAD = "batch_upload"
    BATCH_UPLOAD_END = "batch_upload_end"
    SCRIPT_ADVICE = "script_advice"


#: (MTI, processing code, 60.1) → kind, for the financial messages.
FINANCIAL: Final[dict[tuple[str, str, str], Kind]] = {
    (Mti.FINANCIAL_REQUEST, ProcessingCode.BALANCE, TxnType.BALANCE): Kind.BALANCE,
    (Mti.FINANCIAL_REQUEST, ProcessingCode.PURCHASE, TxnType.PURCHASE): Kind.PURCHASE,
    (Mti.FINANCIAL_REQUEST, ProcessingCode.VOID, TxnType.VOID): Kind.VOID,
    (Mti.ADVICE, ProcessingCode.VOID, TxnType.REFUND): Kind.REFUND,
    (Mti.AUTH_REQUEST, ProcessingCode.PREAUTH, TxnType.PREAUTH): Kind.PREAUTH,
    (Mti.AUTH_REQUEST, ProcessingCode.VOID, TxnType.PREAUTH_CANCEL): Kind.PREAUTH_CANCEL,
    (Mti.FINANCIAL_REQUEST, ProcessingCode.PURCHASE, TxnType.PREAUTH_COMPLETION): Kind.PREAUTH_COMPLETION,
    (Mti.ADVICE, ProcessingCode.PURCHASE, TxnType.PREAUTH_COMPLETION_ADVICE): Kind.PREAUTH_COMPLETION_ADVICE,
    (Mti.FINANCIAL_REQUEST, ProcessingCode.VOID, TxnType.PREAUTH_COMPLETION_VOID): Kind.PREAUTH_COMPLETION_VOID,
    (Mti.FINANCIAL_REQUEST, ProcessingCode.TRANSFER, TxnType.TRANSFER): Kind.TRANSFER,
}

#: (MTI, 60.3) → kind, for network management, settlement and batch upload.
MANAGEMENT: Final[dict[tuple[str, str], Kind]] = {
    (Mti.NETWORK_REQUEST, NetworkCode.SIGN_ON_DOUBLE_KEYS): Kind.SIGN_ON,
    (Mti.NETWORK_REQUEST, NetworkCode.SIGN_ON_WITH_TDK): Kind.SIGN_ON,
    (Mti.NETWORK_ADVICE, NetworkCode.SIGN_OFF): Kind.SIGN_OFF,
    (Mti.NETWORK_ADVICE, NetworkCode.ECHO): Kind.ECHO,
    (Mti.SETTLEMENT, NetworkCode.SETTLEMENT): Kind.SETTLEMENT,
    (Mti.BATCH_UPLOAD, NetworkCode.BATCH_UPLOAD): Kind.BATCH_UPLOAD,
    (Mti.BATCH_UPLOAD, NetworkCode.END_OF_BATCH_UPLOAD): Kind.BATCH_UPLOAD_END,
    (Mti.BATCH_UPLOAD, NetworkCode.CHIP_BATCH_UPLOAD_BALANCED): Kind.BATCH_UPLOAD,
    (Mti.BATCH_UPLOAD, NetworkCode.CHIP_BATCH_UPLOAD_UNBALANCED): Kind.BATCH_UPLOAD,
    (Mti.SCRIPT_ADVICE, NetworkCode.SCRIPT_RESULT_ADVICE): Kind.SCRIPT_ADVICE,
}

LEDGER_OPS: Final[dict[Kind, LedgerOp]] = {
    Kind.BALANCE: LedgerOp.BALANCE,
    Kind.PURCHASE: LedgerOp.PURCHASE,
    Kind.VOID: LedgerOp.VOID,
    Kind.REFUND: LedgerOp.REFUND,
    Kind.PREAUTH: LedgerOp.PREAUTH,
    Kind.PREAUTH_CANCEL: LedgerOp.PREAUTH_CANCEL,
    Kind.PREAUTH_COMPLETION: LedgerOp.PREAUTH_COMPLETION,
    Kind.PREAUTH_COMPLETION_ADVICE: LedgerOp.PREAUTH_COMPLETION,
    Kind.PREAUTH_COMPLETION_VOID: LedgerOp.PREAUTH_COMPLETION_VOID,
    Kind.TRANSFER: LedgerOp.TRANSFER,
}

#: Kinds that name an original through field 61 (and the kinds that original may be).
ORIGINALS: Final[dict[Kind, tuple[Kind, ...]]] = {
    Kind.VOID: (Kind.PURCHASE,),
    Kind.REFUND: (Kind.PURCHASE, Kind.PREAUTH_COMPLETION, Kind.PREAUTH_COMPLETION_ADVICE),
    Kind.PREAUTH_CANCEL: (Kind.PREAUTH,),
    Kind.PREAUTH_COMPLETION: (Kind.PREAUTH,),
    Kind.PREAUTH_COMPLETION_ADVICE: (Kind.PREAUTH,),
    Kind.PREAUTH_COMPLETION_VOID: (Kind.PREAUTH_COMPLETION, Kind.PREAUTH_COMPLETION_ADVICE),
}

#: Fields every financial request must carry (besides a PAN in 2 or 35).
FINANCIAL_REQUIRED: Final = ("3", "11", "22", "25", "41", "42", "49", "60", "64")
EXTRA_REQUIRED: Final[dict[Kind, tuple[str, ...]]] = {
    Kind.TRANSFER: ("4", "48"),
    Kind.VOID: ("4", "61"),
    Kind.REFUND: ("4", "61"),
    Kind.PREAUTH_CANCEL: ("4", "61"),
    Kind.PREAUTH_COMPLETION: ("4", "61"),
    Kind.PREAUTH_COMPLETION_ADVICE: ("4", "61"),
    Kind.PREAUTH_COMPLETION_VOID: ("4", "61"),
    Kind.PURCHASE: ("4",),
    Kind.PREAUTH: ("4",),
}
