"""Receipts (签购单): a printed text slip with merchant and cardholder copies, or an HTML e-receipt for MPOS.

The card number is always masked (first 6 / last 4); a QR payment shows its wallet, the payment code masked
(first 4 / last 4) and the voucher number. Everything in the HTML is escaped.
"""

from __future__ import annotations

import dataclasses
import html
from pathlib import Path
from typing import Final

from wire.field59 import mask_code
from wire.masking import mask_pan

WIDTH: Final = 40
KIND_NAMES: Final = {
    "purchase": "SALE 消费",
    "void": "VOID 撤销",
    "refund": "REFUND 退货",
    "preauth": "PRE-AUTH 预授权",
    "preauth_cancel": "PRE-AUTH CANCEL 预授权撤销",
    "preauth_completion": "COMPLETION 预授权完成",
    "preauth_completion_void": "COMPLETION VOID 完成撤销",
    "transfer": "TRANSFER 转账",
    "balance": "BALANCE 余额查询",
    "qr_sale": "QR SALE 扫码消费",
    "qr_void": "QR VOID 扫码撤销",
    "qr_refund": "QR REFUND 扫码退货",
}


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ReceiptData:
    merchant_name: str
    merchant_id: str
    terminal_id: str
    operator: str
    pan: str
    kind: str
    batch: str
    stan: str
    rrn: str
    auth_code: str
    date: str  # MMDD
    time: str  # hhmmss
    amount: int  # minor units
    #: QR payments: the consumer's payment code (printed masked: first 4 / last 4), its wallet and the voucher.
    payment_code: str = ""
    wallet: str = ""
    voucher: str = ""

    @property
    def payer(self) -> list[tuple[str, str]]:
        if self.kind.startswith("qr_"):
            return [
                ("PAID BY 支付方式", f"QR {self.wallet.upper() or 'WALLET'}"),
                ("CODE 付款码", mask_code(self.payment_code) if self.payment_code else "-"),
                ("VOUCHER NO. 付款凭证号", self.voucher or "-"),
            ]
        return [("CARD NO. 卡号", mask_pan(self.pan)), ("ISSUER 发卡机构", "CUP")]

    @property
    def lines(self) -> list[tuple[str, str]]:
        return [
            ("MERCHANT NAME 商户名称", self.merchant_name),
            ("MERCHANT NO. 商户编号", self.merchant_id),
            ("TERMINAL NO. 终端编号", self.terminal_id),
            ("OPERATOR 操作员", self.operator),
            *self.payer,
            ("TRANS TYPE 交易类型", KIND_NAMES.get(self.kind, self.kind)),
            ("BATCH NO. 批次号", self.batch),
            ("TRACE NO. 凭证号", self.stan),
            ("REF NO. 参考号", self.rrn.strip()),
            ("AUTH NO. 授权码", self.auth_code or "-"),
            ("DATE/TIME 日期时间", f"{self.date[:2]}/{self.date[2:]} {self.time[:2]}:{self.time[2:4]}:{self.time[4:]}"),
            ("AMOUNT 金额", f"RMB {self.amount / 100:,.2f}"),
        ]


def text_receipt(data: ReceiptData) -> str:
    out = []
    for copy, footer in (
        ("MERCHANT COPY 商户存根", "CARDHOLDER SIGNATURE 持卡人签名:\n\n____________________"),
        ("CARDHOLDER COPY 持卡人存根", ""),
    ):
        out.append("=" * WIDTH)
        out.append("POS 签购单 (acqsim TEST)".center(WIDTH))
        out.append(copy.center(WIDTH))
        out.append("-" * WIDTH)
        out.extend(f"{label}: {value}" for label, value in data.lines)
        out.append("-" * WIDTH)
        if footer:
            out.append(footer)
            out.append("I ACKNOWLEDGE SATISFACTORY RECEIPT OF GOODS/SERVICES")
    out.append("=" * WIDTH)
    return "\n".join(out)


def html_receipt(data: ReceiptData) -> str:
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in data.lines)
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>acqsim e-receipt</title></head><body>"
        f"<h1>电子签购单 e-receipt (acqsim TEST)</h1><table>{rows}</table></body></html>"
    )


def deliver(data: ReceiptData, *, mpos: bool, receipts_dir: Path) -> str:
    """The slip's text to print, or, for an MPOS terminal (application type 67), the line saying where its
    escaped HTML e-receipt was written."""
    if not mpos:
        return text_receipt(data)
    path = receipts_dir / f"{data.terminal_id}-{data.stan}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html_receipt(data), encoding="utf-8")
    return f"e-receipt written to {path}"
