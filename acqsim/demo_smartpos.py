"""The demo's smart-POS day (``acqsim demo``, after the card day): the cash register, QR payments both ways and
the merchant apps, against the same pipeline and its merchant platform (a process of ``acqsim up``, or one
started here).

An ECR sale paid by card (items rung up at the till, a coupon off the basket, the card charged through the
terminal's ECR link), a QR 被扫 payment (the wallet app's code scanned), a 主扫 payment (an order QR paid by
the wallet app, polled), a group-buy voucher verified (and refused the second time), a booking held by a
pre-authorisation and completed when the guest comes, member points earned by card fingerprint and redeemed,
a cash sale in register-only mode, a notice in the message centre, the terminal's settlement (QR included),
the wallet's QR takings settled into the ledger (a second run posting nothing), and the merchant's sales
report with its chart. Each step prints one line; the day passes only if every step ended as expected.
"""

from __future__ import annotations

import dataclasses
import functools
import ssl
import time
from collections.abc import Callable
from typing import Final

import anyio

from acqkit.amounts import yuan
from acqkit.config import LOOPBACK, AcqsimConfig, Endpoint
from acqkit.datakey import DataKey
from acqkit.extras import MissingExtra
from acqsim.wallet_settle import DEFAULT_WALLET_FEE_BP, settle_wallet
from core_ledger.setup import open_store
from ecr.register import Basket, Item, ring_up
from ecr.till import Till
from merchant.analytics import plot, report, text
from merchant.client import MerchantClient, terminal_signer
from merchant.server import MerchantHost
from merchant.server import serve as serve_platform
from merchant.store import MerchantStore
from terminal.ecr_link import EcrLink, serve_ecr
from terminal.pos import PosTerminal
from terminal.qrpay import order_of, qr_order, qr_sale, wait_for_payment
from terminal.session import Original
from wallet.client import WalletClient
from wallet.settlement import business_date
from wire.field59 import mask_code
from wire.merchantlink import MerchantKind as M
from wire.tlvlink import LinkMessage
from wire.walletlink import Kind as W

SMART_TERMINAL: Final = "10000001"
CONSUMER: Final = "TEST-WECHAT-1"
MEMBER_PHONE: Final = "13800000000"  # TEST
POLL_S: Final = 0.1
CHART: Final = "merchant-report.png"


@dataclasses.dataclass(slots=True)
class Day:
    write: Callable[[str], None]
    results: list[tuple[str, bool]] = dataclasses.field(default_factory=list)

    def step(self, title: str, ok: bool, detail: str) -> None:
        self.results.append((title, ok))
        self.write(f"[{'ok  ' if ok else 'FAIL'}] {title}: {detail}")

    @property
    def passed(self) -> bool:
        return all(ok for _, ok in self.results)


async def smartpos_day(
    config: AcqsimConfig,
    write: Callable[[str], None],
    *,
    nac: Endpoint,
    wallet: Endpoint,
    platform: Endpoint | None = None,
    client_tls: ssl.SSLContext | None = None,
) -> bool:
    """The day against ``nac`` and the wallet host; against the merchant platform at ``platform`` (a process
    of ``acqsim up``, its store the configuration's ``[merchant] db``), or one started here when ``None``.
    ``client_tls``: how the wallet app, the till and the apps dial the wallet host and the platform."""
    write("")
    write("— the smart POS: a cash register, QR payments and the merchant apps —")
    day = Day(write)
    fixture = config.terminal(SMART_TERMINAL)
    merchant_id = fixture.merchant_id
    card = config.cards[0]
    store = MerchantStore(config.store_path(config.merchant_platform.db))
    try:
        async with anyio.create_task_group() as tg:
            platform_at = platform
            if platform_at is None:
                platform_port = await tg.start(
                    functools.partial(serve_platform, LOOPBACK, 0, platform=MerchantHost(store))
                )
                platform_at = Endpoint(host=LOOPBACK, port=platform_port)
            async with PosTerminal(config, SMART_TERMINAL, nac=nac) as pos:
                link_port = await tg.start(functools.partial(serve_ecr, LOOPBACK, 0, link=EcrLink(pos, card)))
                async with (
                    Till(
                        merchant_id=merchant_id,
                        terminal_id=SMART_TERMINAL,
                        link=Endpoint(host=LOOPBACK, port=link_port),
                        platform=platform_at,
                        platform_tls=client_tls,
                        platform_signer=terminal_signer(config, SMART_TERMINAL),
                    ) as till,
                    MerchantClient(
                        platform_at.host,
                        platform_at.port,
                        tls=client_tls,
                        signer=terminal_signer(config, SMART_TERMINAL),
                    ) as apps,
                    WalletClient(wallet.host, wallet.port, tls=client_tls) as app,
                ):
                    await _walk(day, config, pos, till, apps, app, merchant_id, card.pan)
            tg.cancel_scope.cancel()
        sales = store.load().sales().values()
    finally:
        store.close()
    rep = report(sales, merchant_id)
    write("")
    write(text(rep))
    chart = config.data_dir / CHART
    try:
        plot(rep, str(chart))
        day.step("merchant report chart", chart.is_file(), f"written to {chart}")
    except MissingExtra as exc:
        write(f"(no chart: {exc})")
    day.step(
        "sales by method",
        rep.by_method["CARD"][0] >= 1 and rep.by_method["QR"][0] >= 2 and rep.by_method["CASH"][0] == 1,
        f"{rep.count} sales, average ticket {yuan(rep.average_ticket)}",
    )
    passed = sum(ok for _, ok in day.results)
    write(f"smart-POS day: {passed} of {len(day.results)} steps ended as expected")
    return day.passed


async def _walk(
    day: Day,
    config: AcqsimConfig,
    pos: PosTerminal,
    till: Till,
    apps: MerchantClient,
    app: WalletClient,
    merchant_id: str,
    pan: str,
) -> None:
    async def ask(message: LinkMessage) -> LinkMessage:
        return await apps.request(message)

    # Members: the card is enrolled by its fingerprint under the data key; the number itself never leaves.
    fingerprint = DataKey.load_or_create(config.data_dir / "keys").fingerprint(pan)
    member = await ask(LinkMessage.of(M.MEMBER_JOIN, MI=merchant_id, PH=MEMBER_PHONE, FP=fingerprint))
    day.step("member enrolled", member.result == "00", f"member {member.get('MB')} by phone and card fingerprint")

    # 1. The till: items, a coupon, the card through the ECR link.
    coupon = await ask(LinkMessage.of(M.COUPON_ISSUE, MI=merchant_id, DA=300, MS=2000))
    basket = ring_up(["coffee:12.00x2", "cake:8.50"], amount=None, till_id=pos.session.state.terminal_id)
    basket, redeemed = await till.redeem_coupon(basket, coupon["CP"])
    sold = await till.sell(basket)
    answer = sold.answer
    day.step(
        "ECR sale paid by card",
        sold.approved and redeemed.result == "00" and sold.recorded,
        f"basket {yuan(basket.subtotal)} less coupon {yuan(basket.discount)} = {yuan(basket.total)}; "
        f"terminal answered {sold.result} card {(answer.get('PM') if answer else None) or '-'} "
        f"RRN {(answer.get('RR') if answer else None) or '-'}",
    )
    next_basket = ring_up(["coffee:12.00x2"], amount=None, till_id=pos.session.state.terminal_id)
    _, again = await till.redeem_coupon(next_basket, coupon["CP"])
    day.step("coupon used twice", again.result == "94", f"on the next basket answered {again.result} (used already)")

    found = await ask(LinkMessage.of(M.MEMBER_FIND, MI=merchant_id, FP=fingerprint))
    earned = await ask(LinkMessage.of(M.MEMBER_POINTS, MI=merchant_id, MB=found["MB"], AM=basket.total))
    day.step("member points earned", earned.result == "00", f"found by card fingerprint; {earned.get('PT')} points")

    # 2. QR 被扫: the consumer shows a code, the terminal scans it.
    code = (await app.request(LinkMessage.of(W.CODE, CA=CONSUMER)))["A3"]
    scanned = await qr_sale(pos, code, 1800)
    ok = scanned is not None and scanned.approved
    if ok and scanned is not None:
        await _record(till, f"QR-{scanned.fields['11']}", "QR", (("noodles", 1, 1800),))
    day.step(
        "QR 被扫 payment",
        ok,
        f"code {mask_code(code)} charged 18.00: {scanned.response_code if scanned else 'no answer'}",
    )
    reused = await qr_sale(pos, code, 100)
    day.step(
        "payment code used twice",
        reused is not None and reused.response_code == "94",
        f"answered {reused.response_code if reused else '-'}",
    )

    # 3. QR 主扫: the terminal shows an order QR, the consumer's app pays it, the terminal polls.
    order = await qr_order(pos, 2600)
    shown = order_of(order) if order is not None else None
    paid_by_app = (
        await app.request(LinkMessage.of(W.PAY_ORDER, CA=CONSUMER, QO=shown.order)) if shown and shown.order else None
    )
    result = await wait_for_payment(pos, order, interval=POLL_S, deadline=10) if order is not None else None
    ok = result is not None and result.approved and paid_by_app is not None and paid_by_app.result == "00"
    if ok and result is not None:
        await _record(till, f"ORDER-{result.fields.get('11', '')}", "QR", (("dumplings", 2, 1300),))
    day.step(
        "QR 主扫 payment",
        ok,
        f"order QR {shown.qr_content if shown else '-'} paid by the wallet app, learned by polling",
    )

    # 4. A group-buy voucher: sold on the platform, verified at the till, refused the second time.
    voucher = await ask(LinkMessage.of(M.VOUCHER_SELL, MI=merchant_id, NM="set menu for two", AM=9900))
    first = await ask(LinkMessage.of(M.VOUCHER_VERIFY, MI=merchant_id, GV=voucher["GV"], ER="table-7"))
    second = await ask(LinkMessage.of(M.VOUCHER_VERIFY, MI=merchant_id, GV=voucher["GV"], ER="table-9"))
    settled = await ask(LinkMessage.of(M.VOUCHER_SETTLE, MI=merchant_id))
    day.step(
        "group-buy voucher verified",
        first.result == "00" and second.result == "94" and settled.get("CN") == "1",
        f"{first.get('NM')}: verified, second use {second.result}; settled {yuan(int(settled.get('AM') or 0))}",
    )

    # 5. A booking held by a pre-authorisation, completed when the guest arrives.
    booking = await ask(LinkMessage.of(M.BOOKING_NEW, MI=merchant_id, SL="2026-12-04T19:00", NM="Ms Li", AM=20000))
    card = config.cards[0]
    hold = await pos.financial("preauth", card, amount=20000, pin=card.pin)
    held = hold is not None and hold.approved
    if held and hold is not None:
        await ask(LinkMessage.of(M.BOOKING_PAID, BK=booking["BK"], AC=hold.fields["38"], ST=hold.fields["11"]))
        done = await pos.financial(
            "preauth_completion",
            card,
            amount=18800,
            pin=card.pin,
            original=Original(stan=hold.fields["11"], auth_code=hold.fields["38"]),
        )
        held = done is not None and done.approved
        finished = await ask(LinkMessage.of(M.BOOKING_DONE, BK=booking["BK"], AM=18800))
        held = held and finished.get("ON") == "completed"
        await _record(till, f"BOOKING-{booking['BK']}", "CARD", (("dinner for two", 1, 18800),))
    day.step("booking with a pre-auth", held, "slot 19:00 held with 200.00, completed at 188.00 when the guest came")

    # 6. Points redeemed, a cash sale, a notice.
    redeemed_points = await ask(LinkMessage.of(M.MEMBER_POINTS, MI=merchant_id, MB=found["MB"], PR=20))
    day.step(
        "member points redeemed",
        redeemed_points.result == "00",
        f"20 points = {yuan(int(redeemed_points.get('DA') or 0))} off",
    )
    cash = await till.sell(ring_up(["tea:8.00"], amount=None, till_id="CASH"), cash=True)
    day.step("cash sale (register only)", cash.approved and cash.recorded, "8.00 in cash, no terminal involved")
    await ask(LinkMessage.of(M.NOTICE_PUSH, MI=merchant_id, MK="PARAMETERS", TX="parameter version 7 is ready"))
    notices = await ask(LinkMessage.of(M.NOTICE_LIST, MI=merchant_id, TI=pos.session.state.terminal_id))
    day.step(
        "message centre",
        (notices.get("N1") or "").endswith("parameter version 7 is ready"),
        f"{notices.get('CN')} notice(s): {notices.get('N1')}",
    )

    # 7. Settlement: the terminal's totals, QR payments included, agree with the host's.
    outcome, totals = await pos.settle()
    balanced = outcome is not None and outcome.approved and outcome.fields.get("48", "")[30:31] == "1"
    day.step(
        "settlement with QR",
        balanced,
        f"debits {totals.domestic.debit_count} / {yuan(totals.domestic.debit_amount)} balanced",
    )

    # 8. End of day at the wallet: its QR takings posted into the ledger once (acqsim wallet settle).
    ledger = await anyio.to_thread.run_sync(open_store, str(config.store_path(config.ledger.db)))
    try:
        today = business_date(time.time())
        wallet_day = await settle_wallet(app, ledger, today, fee_bp=DEFAULT_WALLET_FEE_BP)
        rerun = await settle_wallet(app, ledger, today, fee_bp=DEFAULT_WALLET_FEE_BP)
    finally:
        ledger.close()
    takings = sum(p.payout for p in wallet_day.posted if p.batch.merchant_id == merchant_id)
    day.step(
        "QR takings settled into the ledger",
        takings > 0 and rerun.nothing_posted,
        f"{yuan(takings)} paid to {merchant_id}; a second run posts nothing",
    )


async def _record(till: Till, reference: str, method: str, items: tuple[tuple[str, int, int], ...]) -> None:
    """A sale the terminal took (QR, a booking) recorded for the analytics, as the smart POS does."""
    basket = Basket(items=tuple(Item(n, q, p) for n, q, p in items), reference=reference)
    await till.record(basket, method)
