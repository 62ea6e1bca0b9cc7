"""The wallet link: front-end (merchant side) and wallet app (consumer side) ↔ wallet host (docs/qr.md).

Frames as on every acqsim link (2-byte length); each payload is one TLV message (:mod:`wire.tlvlink`). The
merchant side speaks for a terminal (``TI`` ``MI`` ``ST`` ``DT`` name the request, and make its retry safe:
the host answers a repeated key with its first answer); the consumer side names the wallet account (``CA``).

Results (``RC``): the ISO codes of PROTOCOL.md §3a, plus :data:`PENDING` (``09``, ISO 8583:1987 "request in
progress"): the payment waits for the consumer's password, or an order waits to be paid — ask again with
``QURY`` (or reverse). Amounts are minor units (fen) as digits.
"""

from __future__ import annotations

from typing import Final

from wire.field59 import QR_PENDING
from wire.tlvlink import COMMON_TAGS, ERROR_KIND, KIND_ERROR, KindSpec, LinkSpec, TagSpec

WALLET_LINK_NAME: Final = "wallet link"
#: ``RC``: the payment waits for the consumer (password), or the order waits to be paid (as on the POS link).
PENDING: Final = QR_PENDING
#: ``RC``: the payment code or order has expired (acqsim uses the card code "expired card").
EXPIRED: Final = "54"
#: ``RC``: the payment code was used already, or the order was paid or closed (acqsim: "duplicate").
USED: Final = "94"


class Kind:
    """``MT`` values of the wallet link."""

    CODE = "CODE"  # consumer: a one-time payment code
    BALANCE = "BALN"  # consumer: the wallet account's balance
    PAY_ORDER = "OPAY"  # consumer: pay a merchant's order QR (主扫)
    CONFIRM = "CONF"  # consumer: enter the password a pending payment waits for
    PAY = "PAYC"  # merchant: charge a scanned payment code (被扫)
    QUERY = "QURY"  # merchant: how did a payment or an order end?
    REVERSE = "REVS"  # merchant: undo a payment whose answer never came (named by TI ST DT)
    VOID = "VOID"  # merchant: cancel a payment the same day (named by A4)
    REFUND = "RFND"  # merchant: give back part or all of a payment (named by A4)
    REVERSE_GIVE_BACK = "RVGB"  # merchant: undo a void or refund whose answer never came (named by TI ST DT)
    ORDER = "ORDR"  # merchant: create an order QR (主扫)
    CANCEL = "CNCL"  # merchant: close an unpaid order
    SETTLE_OPEN = "STLO"  # acquirer: total and freeze a business date's settlement batches (idempotent)
    SETTLE_BATCH = "STLB"  # acquirer: one of a date's batches, by index
    SETTLE_MARK = "STLM"  # acquirer: the ledger has posted this batch (idempotent)
    ERROR = KIND_ERROR  # answer only: the host could not read the request


_MERCHANT_KEY: Final = frozenset({"TI", "MI", "ST", "DT"})

WALLET_LINK: Final = LinkSpec(
    WALLET_LINK_NAME,
    tags={
        **COMMON_TAGS,
        "AM": TagSpec("amount in minor units", 12, digits=True),
        "TI": TagSpec("terminal id", 8, min_len=8),
        "MI": TagSpec("merchant id", 15, min_len=15),
        "ST": TagSpec("terminal's STAN", 6, digits=True, min_len=6),
        "DT": TagSpec("terminal's date MMDD", 4, digits=True, min_len=4),
        "RR": TagSpec("retrieval reference number", 12, min_len=12),
        "A3": TagSpec("payment code", 19, digits=True, min_len=19),
        "A4": TagSpec("payment voucher number", 32),
        "AC": TagSpec("authorisation code", 6, min_len=6),
        "QO": TagSpec("order number", 32),
        "QR": TagSpec("order QR content", 200),
        "QE": TagSpec("order lifetime in seconds", 5, digits=True),
        "EX": TagSpec("expires at, Unix seconds", 10, digits=True),
        "CA": TagSpec("consumer's wallet account", 32),
        "PW": TagSpec("consumer's wallet password (TEST)", 6, digits=True, min_len=6),
        "WL": TagSpec("wallet", 10),
        "BL": TagSpec("balance in minor units", 12, digits=True),
        "ON": TagSpec("state of a payment or order", 10),
        "DA": TagSpec("business date YYYYMMDD", 8, digits=True, min_len=8),
        "IX": TagSpec("index of a settlement batch, from 0", 6, digits=True),
        "CN": TagSpec("count", 9, digits=True),
        "NT": TagSpec("net amount in minor units, signed (-123)", 13),
    },
    kinds={
        Kind.CODE: KindSpec("issue a one-time payment code", frozenset({"CA"}), frozenset({"A3", "EX"})),
        Kind.BALANCE: KindSpec("wallet balance", frozenset({"CA"})),
        Kind.PAY_ORDER: KindSpec("pay an order QR", frozenset({"CA", "QO"})),
        Kind.CONFIRM: KindSpec("password for a pending payment", frozenset({"CA", "A4", "PW"})),
        Kind.PAY: KindSpec("charge a payment code", _MERCHANT_KEY | {"AM", "A3"}),
        Kind.QUERY: KindSpec("result of a payment or order", frozenset({"TI"})),
        Kind.REVERSE: KindSpec("reverse a payment", _MERCHANT_KEY),
        Kind.VOID: KindSpec("void a payment", _MERCHANT_KEY | {"A4"}),
        Kind.REFUND: KindSpec("refund a payment", _MERCHANT_KEY | {"A4", "AM"}),
        Kind.REVERSE_GIVE_BACK: KindSpec("reverse a void or refund", _MERCHANT_KEY),
        Kind.ORDER: KindSpec("create an order QR", _MERCHANT_KEY | {"AM"}, frozenset({"QO"})),
        Kind.CANCEL: KindSpec("close an unpaid order", frozenset({"TI", "QO"})),
        Kind.SETTLE_OPEN: KindSpec("open a date's settlement batches", frozenset({"DA"}), frozenset({"CN", "NT"})),
        Kind.SETTLE_BATCH: KindSpec(
            "one settlement batch", frozenset({"DA", "IX"}), frozenset({"WL", "MI", "DA", "NT", "CN", "ON"})
        ),
        Kind.SETTLE_MARK: KindSpec("a settlement batch is posted", frozenset({"DA", "WL", "MI"}), frozenset({"ON"})),
        Kind.ERROR: ERROR_KIND,
    },
)
