"""Phase 2 of the four-party flow, end to end over real loopback TCP: a POS terminal → NAC → the acquirer's
front-end, which routes by BIN — on-us to its own ledger, off-us to the scheme switch (the PIN translated TPK →
acquirer ZPK by CA at the acquirer's HSM, then → issuer ZPK by CC at the switch's, verified by EC at the issuer's)
— an unknown BIN declined, an issuer down answered in stand-in or 91."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import anyio
import pytest

from acqkit.config import AcqsimConfig, CardFixture
from acqsim.clearing_reconcile import read_journal_entries, reconcile_acquirer
from acqsim.fourparty import ACQUIRER_ID, CARD_C, DEBIT_B, SWITCH_ID, acquirer_access, card_fixture, running_world
from acqsim.pipeline import running_pipeline
from acqsim.traceview import journey
from core_ledger.api import LedgerOp
from core_ledger.sqlite_store import SqliteStore
from scheme.clearing import build_run
from scheme.fees import FeeTable
from terminal.pos import PosTerminal
from terminal.session import Original
from wire.dissect import HIDDEN
from wire.trace import read_trace

pytestmark = pytest.mark.anyio


def balance_b(path: Path, pan: str) -> int:
    store = SqliteStore(path)
    try:
        state = store.load()
        return state.accounts[state.cards[pan].account_id].balance
    finally:
        store.close()


async def test_off_us_cards_go_through_the_switch_and_on_us_stays_home(tmp_path: Path) -> None:
    config = AcqsimConfig.default(data_dir=tmp_path / "acquirer")
    good = config.card("6200001000000003")
    debit_b, card_c = card_fixture(DEBIT_B), card_fixture(CARD_C)
    unknown = CardFixture(pan="4111111111111111", expiry="3012", pin="1234", pvv="0000")
    today = dt.datetime.now(dt.UTC)
    async with running_world(tmp_path / "world", clock=today, stand_in_limit=10_000, issuer_timeout=0.5) as world:
        opening = balance_b(world.ledger_b_db, DEBIT_B.pan)
        async with (
            running_pipeline(config, trace=True, scheme=acquirer_access(world.switch_port)) as pipeline,
            PosTerminal(config, "10000001", nac=pipeline.nac) as pos,
        ):
            buy = await pos.financial("purchase", debit_b, amount=12_345, pin=debit_b.pin)
            assert buy is not None and buy.approved and buy.trusted
            assert balance_b(world.ledger_b_db, DEBIT_B.pan) == opening - 12_345  # the issuer's own books

            wrong = await pos.financial("purchase", debit_b, amount=100, pin="999999")
            assert wrong is not None and wrong.response_code == "55"  # verified at the issuer, not here

            void = await pos.financial(
                "void", debit_b, amount=12_345, original=Original(stan=buy.fields["11"], rrn=buy.fields["37"])
            )
            assert void is not None and void.approved
            assert balance_b(world.ledger_b_db, DEBIT_B.pan) == opening

            second = await pos.financial("purchase", debit_b, amount=5_000, pin=debit_b.pin)
            assert second is not None and second.approved
            refund = await pos.financial(
                "refund",
                debit_b,
                amount=1_000,
                original=Original(stan=second.fields["11"], rrn=second.fields["37"], local_date=second.fields["13"]),
            )
            assert refund is not None and refund.approved
            assert balance_b(world.ledger_b_db, DEBIT_B.pan) == opening - 4_000

            hold = await pos.financial("preauth", debit_b, amount=20_000, pin=debit_b.pin)
            assert hold is not None and hold.approved
            completion = await pos.financial(
                "preauth_completion",
                debit_b,
                amount=18_000,
                pin=debit_b.pin,
                original=Original(stan=hold.fields["11"], auth_code=hold.fields["38"]),
            )
            assert completion is not None and completion.approved
            assert balance_b(world.ledger_b_db, DEBIT_B.pan) == opening - 4_000 - 18_000

            stranger = await pos.financial("purchase", unknown, amount=100, pin=unknown.pin)
            assert stranger is not None and stranger.response_code == "14"

            stand_in = await pos.financial("purchase", card_c, amount=8_000, pin=card_c.pin)
            assert stand_in is not None and stand_in.approved and stand_in.fields["38"].startswith("S")
            too_much = await pos.financial("purchase", card_c, amount=20_000, pin=card_c.pin)
            assert too_much is not None and too_much.response_code == "91"

            home = await pos.financial("purchase", good, amount=700, pin=good.pin)
            assert home is not None and home.approved

        # the front-end's trace shows the switch hop, masked, without a PIN block, with its timing and answer
        records = read_trace(config.trace_dir / "frontend.jsonl")
        hops = [r for r in records if r["link"] == "switch"]
        assert hops[0]["direction"] == "out" and hops[0]["peer"] == "scheme"
        assert hops[0]["message"]["fields"]["2"] == "623050******0014"
        assert hops[1]["direction"] == "in" and hops[1]["note"] == "00"
        answer = hops[1]["message"]["fields"]  # the switch's answer, decoded: its 39 and 38, the card masked
        assert answer["39"] == "00" and answer["38"] == buy.fields["38"] and answer["2"] == "623050******0014"
        assert hops[0]["message"]["fields"]["52"] == HIDDEN  # the zone PIN block CA made, never shown
        # before the switch hop, CA at the acquirer's HSM: the terminal's PIN block to the zone's ZPK
        before = [r for r in records if r["correlation_id"] == hops[0]["correlation_id"]]
        steps = [(r["link"], r["direction"], r["message"].get("code")) for r in before]
        at = steps.index(("switch", "out", None))
        ca_then_switch = [("hsm", "out", "CA"), ("hsm", "in", "CB"), ("switch", "out", None), ("switch", "in", None)]
        assert steps[at - 2 : at + 2] == ca_then_switch
        assert before[at - 1]["note"] == "PIN translated" and before[at - 1]["message"]["error"] == "00"
        assert all("undecodable" not in r["message"] for r in hops)
        shown = "\n".join(journey(config.trace_dir, "10000001", buy.fields["11"]))  # acqsim trace show
        assert "front-end → HSM CA" in shown and "front-end ← switch 0210 (39 = 00)" in shown, shown
        assert DEBIT_B.pan not in (config.trace_dir / "frontend.jsonl").read_text()
        legs = world.journal.all()
        ops = [(leg.op, leg.response_code.value, leg.stand_in) for leg in legs]
        assert ops == [
            (LedgerOp.PURCHASE, "00", False),
            (LedgerOp.PURCHASE, "55", False),
            (LedgerOp.VOID, "00", False),
            (LedgerOp.PURCHASE, "00", False),
            (LedgerOp.REFUND, "00", False),
            (LedgerOp.PREAUTH, "00", False),
            (LedgerOp.PREAUTH_COMPLETION, "00", False),
            (LedgerOp.PURCHASE, "00", True),
            (LedgerOp.PURCHASE, "91", True),
        ]  # the on-us purchase and the unknown BIN never reached the switch
        day = today.strftime("%Y%m%d")
        cleared = world.journal.to_clear(day)
        assert [(c.op, c.amount) for c in cleared] == [
            (LedgerOp.PURCHASE, 5_000),
            (LedgerOp.REFUND, 1_000),
            (LedgerOp.PREAUTH_COMPLETION, 18_000),
            (LedgerOp.PURCHASE, 8_000),
        ]
        # the acquirer reconciles its clearing lines against its front-end journal: every one matched
        run = build_run(cleared, business_date=day, switch_id=SWITCH_ID, members=[ACQUIRER_ID], fees=FeeTable())
        journal = read_journal_entries(Path(config.store_path(config.frontend.db)))
        result = reconcile_acquirer(run.files[ACQUIRER_ID], journal, on_us=("620000",))
        assert result.clean and len(result.matched) == 4
        partial = dataclasses.replace(run.files[ACQUIRER_ID], records=run.files[ACQUIRER_ID].records[:3])
        assert reconcile_acquirer(partial, journal, on_us=("620000",)).not_cleared == (cleared[3].rrn,)


async def test_a_silent_switch_gets_the_reversal_by_store_and_forward(tmp_path: Path) -> None:
    """The front-end hears nothing from the switch in time (the issuer's answer is held): 98 to the terminal and a
    reversal queued; the store-and-forward takes the reversal to the switch, which carries it to the issuer: the
    issuer undoes the purchase (or, if the reversal overtook it, refuses the late purchase), so the card holder's
    money is where it was."""
    config = AcqsimConfig.default(data_dir=tmp_path / "acquirer")
    debit_b = card_fixture(DEBIT_B)
    gate = anyio.Event()
    async with running_world(tmp_path / "world", issuer_timeout=10.0, issuer_b_gate=gate) as world:
        opening = balance_b(world.ledger_b_db, DEBIT_B.pan)
        async with (
            running_pipeline(config, scheme=acquirer_access(world.switch_port, timeout=2.0)) as pipeline,
            PosTerminal(config, "10000001", nac=pipeline.nac) as pos,
        ):
            late = await pos.financial("purchase", debit_b, amount=3_000, pin=debit_b.pin)
            assert late is not None and late.response_code == "98"
            frontend = pipeline.frontend_service
            assert len(frontend.journal.pending_reversals()) == 1
            gate.set()
            await frontend.forwarder.forward_pending()
            assert frontend.journal.pending_reversals() == []
            assert balance_b(world.ledger_b_db, DEBIT_B.pan) == opening
        reversal = [leg for leg in world.journal.all() if leg.op is LedgerOp.REVERSAL]
        assert [leg.response_code.value for leg in reversal] == ["00"]
