"""A day in the four-party TEST world (``acqsim scheme day``; docs/scheme.md): an off-us purchase with PIN
through the switch, a refund and a reversal, an issuer that is down (stand-in, then 91), end-of-day clearing
with interchange and network fees, each member loading its file, and the positions balancing."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

from acqsim.fourparty import (
    ACQUIRER_ID,
    CARD_C,
    CREDIT_B,
    DEBIT_B,
    ISSUER_B_ID,
    ISSUER_C_ID,
    MERCHANT_ID,
    SWITCH_ID,
    SchemeCard,
    running_world,
)
from core_ledger.api import LedgerOp
from core_ledger.check import check_store
from core_ledger.clearing import load_clearing_file
from core_ledger.seed import MerchantSeed
from core_ledger.setup import seed
from core_ledger.sqlite_store import SqliteStore
from scheme.clearing import build_run, file_name, write_run
from scheme.client import OriginalData
from scheme.fees import FeeTable
from wire.masking import mask_pan

Say = Callable[[str], None]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SchemeDay:
    codes: tuple[tuple[str, str], ...]  # (what, response code)
    positions: dict[str, int]
    switch_income: int
    books_sound: bool

    @property
    def balanced(self) -> bool:
        return sum(self.positions.values()) + self.switch_income == 0


def _money(fen: int) -> str:
    return f"{fen / 100:,.2f}"


async def scheme_day(data_dir: Path, say: Say = print, *, clock: dt.datetime | None = None) -> SchemeDay:
    now = clock or dt.datetime.now(dt.UTC)
    day = now.strftime("%Y%m%d")
    codes: list[tuple[str, str]] = []
    async with running_world(data_dir, clock=now, stand_in_limit=10_000, issuer_timeout=0.5) as world:

        async def step(what: str, op: LedgerOp, card: SchemeCard, amount: int, **extra: Any) -> str:
            request = world.request(op, card, amount, **extra)
            answer = await world.send(request)
            code = answer.fields["39"]
            codes.append((what, code))
            say(f"  {what:<46} {mask_pan(request.pan)}  {_money(amount):>10}  → {code} {answer.fields.get('38', '')}")
            return request.rrn if code == "00" else ""

        say(f"acquirer {ACQUIRER_ID} → switch {SWITCH_ID} → issuers {ISSUER_B_ID} (B), {ISSUER_C_ID} (C, down)")
        say("  the PIN: TPK →(CA, acquirer HSM) acquirer ZPK →(CC, switch HSM) B's ZPK →(EC, B's HSM) verified")
        block = await world.pin_block(DEBIT_B)
        await step("off-us debit purchase with PIN at issuer B", LedgerOp.PURCHASE, DEBIT_B, 12_345, pin_block=block)
        credit = world.request(LedgerOp.PURCHASE, CREDIT_B, 200_000, pin_block=await world.pin_block(CREDIT_B))
        answer = await world.send(credit)
        codes.append(("off-us credit purchase with PIN at issuer B", answer.fields["39"]))
        say(
            f"  {'off-us credit purchase with PIN at issuer B':<46} {mask_pan(credit.pan)}  {_money(200_000):>10}"
            f"  → {answer.fields['39']} {answer.fields.get('38', '')}"
        )
        original = OriginalData(
            mti="0200", stan=credit.stan, local_date=credit.local_date, local_time=credit.local_time
        )
        await step("refund of part of the credit purchase", LedgerOp.REFUND, CREDIT_B, 10_000, original=original)
        await step("issuer C down: stand-in within 100.00", LedgerOp.PURCHASE, CARD_C, 8_000)
        await step("issuer C down: above the stand-in limit", LedgerOp.PURCHASE, CARD_C, 20_000)

        run = build_run(
            world.journal.to_clear(day),
            business_date=day,
            switch_id=SWITCH_ID,
            members=[ACQUIRER_ID, ISSUER_B_ID, ISSUER_C_ID],
            fees=FeeTable(),
        )
        write_run(run, data_dir / "clearing")
        world.journal.mark_cleared(run.cleared, f"CLR{day}")
    say(f"end of day {day}: clearing files in {data_dir / 'clearing'}")
    for member, clearing in run.files.items():
        t = clearing.totals
        say(
            f"  {member}: {t.details} line(s), purchases {_money(t.purchase_amount)}, refunds {_money(t.refund_amount)}"
            f", interchange {_money(t.interchange)}, network fee {_money(t.network_fee)}, net {_money(t.net)}"
        )
    say(f"  the switch's network-fee income {_money(run.switch_income)}")
    sound = True
    stores = {
        ISSUER_B_ID: data_dir / "issuer-b.sqlite3",
        ACQUIRER_ID: data_dir / "acquirer-scheme.sqlite3",
        ISSUER_C_ID: data_dir / "issuer-c.sqlite3",
    }
    for member, path in stores.items():
        store = SqliteStore(path)
        try:
            if member != ISSUER_B_ID:
                seed(store, store.load(), merchants=[MerchantSeed(merchant_id=MERCHANT_ID, name="TEST COFFEE")])
            text = (data_dir / "clearing" / file_name(member, day)).read_text(encoding="utf-8")
            load = load_clearing_file(store, text, member_id=member)
            rec = load.reconciliation
            problems = check_store(store)
            sound = sound and not problems
            say(
                f"  {member} loads its file: position {_money(load.position):>12}; {len(rec.matched)} matched, "
                f"{len(rec.unmatched_clearing)} without authorisation; books {problems or 'balanced'}"
            )
        finally:
            store.close()
    return SchemeDay(codes=tuple(codes), positions=run.positions, switch_income=run.switch_income, books_sound=sound)
