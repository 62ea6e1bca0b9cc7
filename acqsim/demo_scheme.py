"""The four-party day (``acqsim scheme day``, ``acqsim demo --scheme``; docs/scheme.md): a POS terminal at the
acquirer's merchant takes other banks' cards. Through the NAC and the acquirer's own front-end they go to the
scheme switch — an off-us purchase with PIN (translated twice, verified at the issuer), a refund, an issuer that
is down (stand-in, then 91), an unknown BIN (14) — while an on-us card stays at home. End of day: the switch's
clearing files with interchange and network fees, each member booking its file (the acquirer into the very
ledger its front-end used), the positions balancing; then 一清 vs 二清 until the aggregator fails."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from pathlib import Path

from acqkit.config import AcqsimConfig, CardFixture
from acqsim.fourparty import (
    ACQUIRER_ID,
    CARD_C,
    CREDIT_B,
    DEBIT_B,
    ISSUER_B_ID,
    ISSUER_C_ID,
    SWITCH_ID,
    acquirer_access,
    card_fixture,
    running_world,
)
from acqsim.pipeline import running_pipeline
from acqsim.scenario_aggregator import ScenarioConfig, run_scenario
from core_ledger.check import check_store
from core_ledger.clearing import load_clearing_file
from core_ledger.settlement import plan_settlement
from core_ledger.setup import open_store, seed
from core_ledger.sqlite_store import SqliteStore
from scheme.clearing import build_run, file_name, write_run
from scheme.fees import FeeTable
from terminal.pos import PosTerminal
from terminal.session import Original, Outcome
from wire.masking import mask_pan

Say = Callable[[str], None]
TERMINAL = "10000001"
#: What each step of the day must answer.
EXPECTED_CODES = (
    ("off-us debit purchase with PIN at issuer B", "00"),
    ("off-us credit purchase with PIN at issuer B", "00"),
    ("refund of part of the credit purchase", "00"),
    ("issuer C down: stand-in within 100.00", "00"),
    ("issuer C down: above the stand-in limit", "91"),
    ("a BIN no one knows", "14"),
    ("on-us card: the acquirer's own ledger", "00"),
)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SchemeDay:
    codes: tuple[tuple[str, str], ...]  # (what, response code)
    positions: dict[str, int]
    switch_income: int
    books_sound: bool
    lost_to_aggregator_failure: int

    @property
    def balanced(self) -> bool:
        return sum(self.positions.values()) + self.switch_income == 0


def _money(fen: int) -> str:
    return f"{fen / 100:,.2f}"


async def scheme_day(data_dir: Path, say: Say = print) -> SchemeDay:
    now = dt.datetime.now(dt.UTC)
    day = now.strftime("%Y%m%d")
    config = AcqsimConfig.default(data_dir=data_dir / "acquirer")
    codes: list[tuple[str, str]] = []
    debit_b, credit_b, card_c = card_fixture(DEBIT_B), card_fixture(CREDIT_B), card_fixture(CARD_C)
    unknown = CardFixture(pan="4111111111111111", expiry="3012", pin="1234", pvv="0000")
    good = config.card("6200001000000003")
    async with running_world(data_dir / "world", clock=now, stand_in_limit=10_000, issuer_timeout=0.5) as world:
        async with (
            running_pipeline(config, scheme=acquirer_access(world.switch_port)) as pipeline,
            PosTerminal(config, TERMINAL, nac=pipeline.nac) as pos,
        ):

            async def step(
                what: str, kind: str, card: CardFixture, amount: int, original: Original | None = None
            ) -> Outcome | None:
                pin = None if kind == "refund" else card.pin
                outcome = await pos.financial(kind, card, amount=amount, pin=pin, original=original)
                code = outcome.response_code if outcome is not None else "--"
                codes.append((what, code))
                auth = outcome.fields.get("38", "") if outcome is not None else ""
                say(f"  {what:<44} {mask_pan(card.pan):<19} {_money(amount):>10}  → {code} {auth}".rstrip())
                return outcome

            say(f"terminal {TERMINAL} → NAC → front-end of acquirer {ACQUIRER_ID} → switch {SWITCH_ID} → issuers")
            say(f"  {ISSUER_B_ID} (B) and {ISSUER_C_ID} (C, down); the PIN: TPK →(CA, acquirer HSM) acquirer ZPK")
            say("  →(CC, switch HSM) B's ZPK →(EC, B's HSM) verified at the issuer")
            await step("off-us debit purchase with PIN at issuer B", "purchase", debit_b, 12_345)
            credit = await step("off-us credit purchase with PIN at issuer B", "purchase", credit_b, 200_000)
            if credit is not None and credit.approved:
                original = Original(stan=credit.fields["11"], rrn=credit.fields["37"], local_date=credit.fields["13"])
                await step("refund of part of the credit purchase", "refund", credit_b, 10_000, original)
            await step("issuer C down: stand-in within 100.00", "purchase", card_c, 8_000)
            await step("issuer C down: above the stand-in limit", "purchase", card_c, 20_000)
            await step("a BIN no one knows", "purchase", unknown, 100)
            await step("on-us card: the acquirer's own ledger", "purchase", good, 700)

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
    sound = _book_the_files(data_dir, config, day, say)
    say("一清 vs 二清 (acqsim scenario aggregator-failure):")
    report = run_scenario(ScenarioConfig(), data_dir / "aggregator")
    last = report.rows[-1]
    say(
        f"  the aggregator fails on {last.date} holding {_money(last.pool_balance)}: its sub-merchants lose "
        f"{_money(report.total_lost)}; the 一清 merchant, paid {_money(last.paid_to_direct_merchant)} by the "
        "acquirer, loses nothing"
    )
    return SchemeDay(
        codes=tuple(codes),
        positions=run.positions,
        switch_income=run.switch_income,
        books_sound=sound,
        lost_to_aggregator_failure=report.total_lost,
    )


def _book_the_files(data_dir: Path, config: AcqsimConfig, day: str, say: Say) -> bool:
    """Each member books its file: the acquirer into its own ledger (then pays its merchant), B into its
    ledger, C (down all day) into a fresh one. True when every ledger passes ``ledger check``."""
    stores = {
        ACQUIRER_ID: config.store_path(config.ledger.db),
        ISSUER_B_ID: str(data_dir / "world" / "issuer-b.sqlite3"),
        ISSUER_C_ID: str(data_dir / "issuer-c.sqlite3"),
    }
    sound = True
    for member, path in stores.items():
        store = open_store(path) if member == ACQUIRER_ID else SqliteStore(path)
        try:
            if member == ISSUER_C_ID:
                seed(store, store.load())
            text = (data_dir / "clearing" / file_name(member, day)).read_text(encoding="utf-8")
            load = load_clearing_file(store, text, member_id=member)
            if member == ACQUIRER_ID:  # 一清: the acquirer pays its merchant what the switch pays it
                settlement = plan_settlement(store.load(), day)
                store.commit(settlement.postings, settled=settlement.settled_keys)
            rec = load.reconciliation
            problems = check_store(store)
            sound = sound and not problems
            say(
                f"  {member} books its file: position {_money(load.position):>12}; {len(rec.matched)} matched, "
                f"{len(rec.unmatched_clearing)} without authorisation; books {problems or 'balanced'}"
            )
        finally:
            store.close()
    return sound
