"""``acqsim ledger reconcile --switch-journal``: an acquirer's off-us rows are reconciled against the scheme
switch's journal, not reported as missing from its ledger (docs/scheme.md)."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

import anyio
import pytest

from acqkit.config import AcqsimConfig
from acqsim.cli import main
from acqsim.fourparty import ACQUIRER_ID, DEBIT_B, acquirer_access, card_fixture, running_world
from acqsim.pipeline import running_pipeline
from acqsim.reconcile import reconcile_stores
from terminal.pos import PosTerminal
from terminal.session import Original

SWITCH_JOURNAL = "switch-journal.sqlite3"  # acqsim/fourparty.py's file in the world's folder


async def _day(tmp_path: Path) -> tuple[AcqsimConfig, dict[str, str]]:
    """On-us and off-us purchases, an off-us PIN failure and an off-us void; the RRNs by what they were."""
    config = AcqsimConfig.default(data_dir=tmp_path / "acquirer")
    good, debit_b = config.card("6200001000000003"), card_fixture(DEBIT_B)
    async with (
        running_world(tmp_path / "world", clock=dt.datetime.now(dt.UTC)) as world,
        running_pipeline(config, scheme=acquirer_access(world.switch_port)) as pipeline,
        PosTerminal(config, "10000001", nac=pipeline.nac) as pos,
    ):
        home = await pos.financial("purchase", good, amount=700, pin=good.pin)
        off_us = await pos.financial("purchase", debit_b, amount=1_234, pin=debit_b.pin)
        wrong = await pos.financial("purchase", debit_b, amount=100, pin="999999")
        voided = await pos.financial("purchase", debit_b, amount=2_000, pin=debit_b.pin)
        assert home and off_us and wrong and voided and voided.approved
        void = await pos.financial(
            "void", debit_b, amount=2_000, original=Original(stan=voided.fields["11"], rrn=voided.fields["37"])
        )
        assert void is not None and void.approved and off_us.approved and wrong.response_code == "55"
        pipeline.cancel.cancel()
    rrns = {"home": home.fields["37"], "off_us": off_us.fields["37"], "voided": voided.fields["37"]}
    return config, rrns


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> tuple[AcqsimConfig, dict[str, str], Path]:
    tmp_path = tmp_path_factory.mktemp("offus")
    config, rrns = anyio.run(_day, tmp_path)
    return config, rrns, tmp_path / "world" / SWITCH_JOURNAL


def _stores(config: AcqsimConfig) -> tuple[Path, str]:
    return Path(config.store_path(config.frontend.db)), config.store_path(config.ledger.db)


def test_a_clean_off_us_day_reconciles_clean(day: tuple[AcqsimConfig, dict[str, str], Path]) -> None:
    config, _, switch = day
    journal, ledger = _stores(config)
    without = reconcile_stores(journal, ledger)
    assert {d.problem for d in without.differences} == {"approved in the journal, no posting at the ledger"}
    result = reconcile_stores(journal, ledger, switch_journal=switch, acquirer_id=ACQUIRER_ID)
    assert result.clean, result.differences
    assert result.matched == result.journal_rows == 5


def test_an_injected_difference_at_the_switch_is_named(
    day: tuple[AcqsimConfig, dict[str, str], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, rrns, switch = day
    journal, ledger = _stores(config)
    changed = tmp_path / SWITCH_JOURNAL
    changed.write_bytes(switch.read_bytes())
    with sqlite3.connect(changed) as db:  # the switch lost the approval of one, and holds one the acquirer never sent
        db.execute("UPDATE legs SET response_code = '05' WHERE rrn = ?", (rrns["off_us"],))
        db.execute(
            "INSERT INTO legs SELECT acquirer_id, '999999999999', msg_class, mti, op, issuer_id, masked_pan, card_type,"
            " amount, currency, stan, local_date, terminal_id, merchant_id, response_code, auth_code, stand_in,"
            " business_date, original_stan, original_date, status, cleared_in, pan_fingerprint FROM legs WHERE rrn = ?",
            (rrns["voided"],),
        )
        db.execute("UPDATE legs SET status = 'open' WHERE rrn = '999999999999'")
    result = reconcile_stores(journal, ledger, switch_journal=changed, acquirer_id=ACQUIRER_ID)
    problems = {(d.rrn, d.problem) for d in result.differences}
    assert problems == {
        (rrns["off_us"], "approved in the journal, not in effect at the switch"),
        ("999999999999", "approved at the switch, no journal row"),
    }
    argv = ["ledger", "reconcile", "--journal", str(journal), "--ledger", ledger, "--switch-journal", str(changed)]
    assert main([*argv, "--json"]) == 1
    assert len(json.loads(capsys.readouterr().out)["differences"]) == 2
    assert main([*argv[:-1], str(tmp_path / "none.sqlite3")]) == 2
    assert "no switch journal" in capsys.readouterr().err
