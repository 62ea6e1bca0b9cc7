"""Field 59 of the POS link for QR payments (PROTOCOL.md §9), and the payment codes it carries.

Field 59 is ``ans..999 LLLVAR`` holding ASCII TLV (:mod:`wire.ascii_tlv`). The contract's tags:

- ``A2`` terminal hardware serial number;
- ``A3`` the consumer's payment code (被扫: 19 digits, the wallet told by its prefix);
- ``A4`` the payment voucher number the host returns in the answer, quoted by void, refund and query.

acqsim's own tags for the consumer-scans-merchant flow (主扫, docs/qr.md): ``QO`` the order number, ``QR``
the QR content the terminal shows, ``QE`` the order's lifetime in seconds. Any other tag is kept as it came
(``other``) so that a message passes through unchanged.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Final

from wire.ascii_tlv import QR_FIELD, TlvItems, encode_ascii_tlv, parse_ascii_tlv
from wire.errors import MessageDecodeError, WireError

TAG_SERIAL: Final = "A2"
TAG_PAYMENT_CODE: Final = "A3"
TAG_VOUCHER: Final = "A4"
TAG_ORDER: Final = "QO"
TAG_QR_CONTENT: Final = "QR"
TAG_ORDER_LIFETIME: Final = "QE"

#: Field 22 for a QR payment: the merchant scanned the consumer's code; no 35, 52 or 55 travels.
ENTRY_QR: Final = "032"
PAYMENT_CODE_DIGITS: Final = 19
#: Field 39 of a QR answer that is not final (ISO 8583:1987 "request in progress"): the payment waits for
#: the consumer's wallet password, or the order is not paid yet. Poll with the query, or reverse (docs/qr.md).
QR_PENDING: Final = "09"


class Wallet(enum.StrEnum):
    UNIONPAY = "unionpay"
    WECHAT = "wechat"
    ALIPAY = "alipay"


#: Two-digit prefixes of a payment code (PROTOCOL.md §9): ``62`` UnionPay, ``10``–``15`` WeChat, ``25``–``30``
#: Alipay.
WALLET_PREFIXES: Final[dict[Wallet, tuple[str, ...]]] = {
    Wallet.UNIONPAY: ("62",),
    Wallet.WECHAT: tuple(str(n) for n in range(10, 16)),
    Wallet.ALIPAY: tuple(str(n) for n in range(25, 31)),
}
_WALLET_BY_PREFIX: Final = {prefix: wallet for wallet, prefixes in WALLET_PREFIXES.items() for prefix in prefixes}


class PaymentCodeError(WireError):
    """A payment code that is not 19 digits or whose prefix names no wallet."""


def wallet_of(code: str) -> Wallet:
    """The wallet a payment code belongs to, by its prefix. Raises :class:`PaymentCodeError`."""
    if len(code) != PAYMENT_CODE_DIGITS or not code.isascii() or not code.isdigit():
        raise PaymentCodeError(f"a payment code is {PAYMENT_CODE_DIGITS} digits", field=QR_FIELD)
    wallet = _WALLET_BY_PREFIX.get(code[:2])
    if wallet is None:
        raise PaymentCodeError("payment code prefix names no wallet", field=QR_FIELD, offset=0)
    return wallet


def mask_code(code: str) -> str:
    """A payment code as logs and receipts show it: first 4 and last 4 digits (a live code is a bearer token
    until used or expired)."""
    return code[:4] + "*" * max(len(code) - 8, 0) + code[-4:] if len(code) > 8 else "*" * len(code)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Field59:
    serial: str | None = None
    payment_code: str | None = None
    voucher: str | None = None
    order: str | None = None
    qr_content: str | None = None
    order_lifetime_s: int | None = None
    other: TlvItems = ()

    def encode(self) -> str:
        named = [
            (TAG_SERIAL, self.serial),
            (TAG_PAYMENT_CODE, self.payment_code),
            (TAG_VOUCHER, self.voucher),
            (TAG_ORDER, self.order),
            (TAG_QR_CONTENT, self.qr_content),
            (TAG_ORDER_LIFETIME, None if self.order_lifetime_s is None else str(self.order_lifetime_s)),
        ]
        present = [(tag, value) for tag, value in named if value is not None]
        return encode_ascii_tlv(present + list(self.other), field=QR_FIELD)

    @classmethod
    def parse(cls, text: str) -> Field59:
        """Raises :class:`MessageDecodeError` (field 59, character offset)."""
        values: dict[str, str] = {}
        other: list[tuple[str, str]] = []
        for tag, value in parse_ascii_tlv(text, field=QR_FIELD):
            if tag in _KNOWN:
                values[tag] = value
            else:
                other.append((tag, value))
        lifetime = values.get(TAG_ORDER_LIFETIME)
        if lifetime is not None and not (lifetime.isascii() and lifetime.isdigit()):
            raise MessageDecodeError(f"{TAG_ORDER_LIFETIME} is not a number of seconds", field=QR_FIELD)
        return cls(
            serial=values.get(TAG_SERIAL),
            payment_code=values.get(TAG_PAYMENT_CODE),
            voucher=values.get(TAG_VOUCHER),
            order=values.get(TAG_ORDER),
            qr_content=values.get(TAG_QR_CONTENT),
            order_lifetime_s=None if lifetime is None else int(lifetime),
            other=tuple(other),
        )


_KNOWN: Final = frozenset({TAG_SERIAL, TAG_PAYMENT_CODE, TAG_VOUCHER, TAG_ORDER, TAG_QR_CONTENT, TAG_ORDER_LIFETIME})
