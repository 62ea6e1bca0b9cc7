"""``acqsim pos qr-pay | qr-order | qr-void | qr-refund``: QR payments at the terminal (docs/qr.md).

acqsim pos qr-pay 12.34 --code 6212…     the merchant scans the consumer's code; a pending answer (the
                                         wallet wants the password) is polled for ``--wait`` seconds,
                                         then reversed
acqsim pos qr-order 12.34                prints the order QR for the consumer to scan (``acqsim wallet pay
                                         ORDER``) and polls until it is paid, cancelled or expired; an
                                         order unpaid at ``--wait`` is cancelled
acqsim pos qr-void 12.34 --stan N --voucher V      acqsim pos qr-refund 5.00 --stan N --voucher V --date MMDD
"""

from __future__ import annotations

import argparse
from typing import Final

from acqkit.amounts import parse_amount
from acqkit.config import AcqsimConfig
from acqkit.exitcodes import EXIT_DECLINED, EXIT_OK, EXIT_UNREACHABLE
from terminal.pos import PosTerminal
from terminal.qrpay import (
    QR_POLL_INTERVAL_S,
    give_back,
    order_of,
    qr_cancel,
    qr_order,
    qr_sale,
    voucher_of,
    wait_for_payment,
)
from terminal.receipt import ReceiptData, deliver
from terminal.session import Original, Outcome
from wire.constants import RESPONSE_MEANINGS, ResponseCode
from wire.field59 import QR_PENDING, PaymentCodeError, wallet_of
from wire.header import APP_MPOS

QR_COMMANDS: Final = ("qr-pay", "qr-order", "qr-void", "qr-refund")


def _line(outcome: Outcome | None) -> str:
    if outcome is None:
        return "no answer (a reversal is queued where one is owed)"
    code = outcome.response_code
    if code == QR_PENDING:
        meaning = "pending"
    else:
        meaning = RESPONSE_MEANINGS[ResponseCode(code)] if code in set(ResponseCode) else "unknown code"
    parts = [f"{code} {meaning}".strip()]
    if outcome.fields.get("37"):
        parts.append(f"RRN {outcome.fields['37'].strip()}")
    if voucher := voucher_of(outcome):
        parts.append(f"voucher {voucher}")
    return ", ".join(parts)


def _receipt(config: AcqsimConfig, terminal_id: str, kind: str, outcome: Outcome, amount: int, code: str) -> str:
    fixture = config.terminal(terminal_id)
    merchant = config.merchant(fixture.merchant_id)
    data = ReceiptData(
        merchant_name=merchant.name,
        merchant_id=merchant.merchant_id,
        terminal_id=terminal_id,
        operator="001",
        pan="",
        kind=kind,
        batch=outcome.fields.get("60", "00000000")[2:8],
        stan=outcome.fields.get("11", ""),
        rrn=outcome.fields.get("37", ""),
        auth_code=outcome.fields.get("38", ""),
        date=outcome.fields.get("13", ""),
        time=outcome.fields.get("12", ""),
        amount=amount,
        payment_code=code,
        wallet=wallet_of(code).value if code else "",
        voucher=voucher_of(outcome) or "",
    )
    return deliver(data, mpos=fixture.app_type == APP_MPOS, receipts_dir=config.data_dir / "receipts")


async def run_qr(args: argparse.Namespace, pos: PosTerminal, config: AcqsimConfig, terminal_id: str) -> int:
    amount = parse_amount(args.amount)
    code = ""
    if args.command == "qr-pay":
        if not args.code:
            raise ValueError("qr-pay needs --code (the consumer's payment code)")
        code = args.code
        try:
            wallet_of(code)  # a code that names no wallet is refused before anything is sent
        except PaymentCodeError as exc:
            raise ValueError(f"--code: {exc}") from None
        outcome = await qr_sale(pos, code, amount)
        if outcome is not None and outcome.response_code == QR_PENDING:
            print(_line(outcome) + ": waiting for the consumer's wallet password")
            outcome = await wait_for_payment(pos, outcome, interval=QR_POLL_INTERVAL_S, deadline=args.wait)
        kind = "qr_sale"
    elif args.command == "qr-order":
        order = await qr_order(pos, amount)
        if order is None or order.response_code != QR_PENDING:
            print(_line(order))
            return EXIT_UNREACHABLE if order is None else EXIT_DECLINED
        shown = order_of(order)
        print(f"order {shown.order}: show this QR to the consumer: {shown.qr_content}")
        print(f"(pay it with: acqsim wallet pay {shown.order})", flush=True)
        outcome = await wait_for_payment(pos, order, interval=QR_POLL_INTERVAL_S, deadline=args.wait)
        if outcome is not None and outcome.response_code == QR_PENDING and shown.order:
            print("not paid in time: the order is cancelled")
            await qr_cancel(pos, shown.order)
        kind = "qr_sale"
    else:
        if not args.stan or not args.voucher:
            raise ValueError(f"{args.command} needs --stan and --voucher of the sale")
        original = Original(stan=f"{int(args.stan):06d}", rrn=args.rrn, local_date=args.date)
        kind = "qr_void" if args.command == "qr-void" else "qr_refund"
        outcome = await give_back(pos, kind, amount, voucher=args.voucher, original=original)
    print(_line(outcome))
    if outcome is None:
        return EXIT_UNREACHABLE
    if outcome.approved and not args.json:
        print(_receipt(config, terminal_id, kind, outcome, amount, code))
    return EXIT_OK if outcome.approved else EXIT_DECLINED
