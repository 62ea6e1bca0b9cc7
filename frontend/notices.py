"""The "settlement done" notice the front-end owes a merchant's message centre, as plain data.

When a terminal's batch closes (a balanced 0500, or the end of the batch upload after an unbalanced one), the
journal queues an ``MSPU`` for the merchant platform in the same transaction as the batch's close
(:class:`frontend.effects.QueueSettlementNotice`); the forwarder (:mod:`frontend.forwarder`) delivers it when
the platform answers. Its notice key ``SETTLE <terminal> <batch>`` makes a retry after a lost answer harmless:
the platform stores one notice per key (docs/smartpos.md, "Notices pushed at settlement").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Final

from acqkit.amounts import yuan
from wire.merchantlink import NOTICE_SETTLEMENT, MerchantKind
from wire.tlvlink import COMMON_TAGS, TAG_TEXT, LinkMessage

#: The methods a settlement notice totals, in the order it shows them.
SETTLEMENT_METHODS: Final = ("CARD", "QR")
#: Journal kinds of a QR payment start with this (``qr_sale``, ``qr_void``, ``qr_refund``).
QR_KIND_PREFIX: Final = "qr_"


@dataclasses.dataclass(frozen=True, slots=True)
class MethodTotals:
    """One method's side of a batch: debits (sales, completions) and credits (voids, refunds)."""

    debit_count: int = 0
    debit_amount: int = 0
    credit_count: int = 0
    credit_amount: int = 0

    @property
    def net(self) -> int:
        return self.debit_amount - self.credit_amount


def method_of(kind: str) -> str:
    """``CARD`` or ``QR`` for a journaled transaction kind."""
    return "QR" if kind.startswith(QR_KIND_PREFIX) else "CARD"


def notice_key(terminal_id: str, batch: str) -> str:
    return f"SETTLE {terminal_id} {batch}"


def settlement_notice(
    merchant_id: str, terminal_id: str, batch: str, totals: Mapping[str, MethodTotals]
) -> LinkMessage:
    """``MSPU`` for the merchant: the batch number and, per method, debits and credits (count / CNY)."""
    parts = []
    for method in SETTLEMENT_METHODS:
        t = totals.get(method, MethodTotals())
        parts.append(f"{method} {t.debit_count}/{yuan(t.debit_amount)} -{t.credit_count}/{yuan(t.credit_amount)}")
    text = f"batch {batch} settled: " + "; ".join(parts)
    return LinkMessage.of(
        MerchantKind.NOTICE_PUSH,
        MI=merchant_id,
        TI=terminal_id,
        MK=NOTICE_SETTLEMENT,
        TX=text[: COMMON_TAGS[TAG_TEXT].max_len],  # fits unless a batch holds billions
        NK=notice_key(terminal_id, batch),
    )
