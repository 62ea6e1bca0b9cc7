"""``acqsim up`` with ``[scheme]`` (issue #19): the switch and issuer B run as processes of their own beside the
acquirer, and a terminal drives the off-us path through them — the PIN translated at the acquirer's HSM (CA) and
the switch's (CC) and verified at issuer B's (EC), a reversal, an unknown BIN declined 14, issuer B killed -9 (the
switch stands in) and the stand-in advice posted at B once the supervisor has brought it back. Once more under
``tls = true`` with the services on trio."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
from pathlib import Path

import anyio
import pytest

from acqkit.config import AcqsimConfig, CardFixture, config_to_toml
from acqkit.tls import create_all
from acqsim.fourparty import DEBIT_B, card_fixture, with_scheme
from acqsim.processes import running_services
from acqsim.scheme_parties import AUDIT_FILE, ISSUER_LEDGER_DB, issuer_dir, issuer_pid, switch_dir
from core_ledger.sqlite_store import SqliteStore
from terminal.pos import PosTerminal
from tests.secrets_scan import secrets_in
from wire.trace import read_trace

#: How long issuer B may take to come back after kill -9 and take the advice (restart, HSM, retry pass).
BACK_WITHIN_S = 90.0
STAND_IN = 8_000


def _balance(db: Path, pan: str) -> int:
    store = SqliteStore(db)
    try:
        state = store.load()
        return state.accounts[state.cards[pan].account_id].balance
    finally:
        store.close()


def _config(tmp_path: Path, *, tls: bool = False) -> tuple[AcqsimConfig, Path]:
    config = with_scheme(AcqsimConfig.default(data_dir=tmp_path / "data"), issuer_timeout=1.0)
    config = dataclasses.replace(config, tls=tls)
    if tls:
        create_all(config.tls_dir)
    path = tmp_path / "acqsim.toml"
    path.write_text(config_to_toml(config), encoding="utf-8")
    return config, path


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.anyio
async def test_the_off_us_path_through_switch_and_issuer_processes(tmp_path: Path) -> None:
    config, path = _config(tmp_path)
    assert config.scheme is not None
    [bank_b] = config.scheme.issuers
    book = issuer_dir(config, bank_b) / ISSUER_LEDGER_DB
    card = card_fixture(DEBIT_B)
    stranger = CardFixture(pan="4111111111111111", expiry="3012", pin="1234", pvv="0000")
    with running_services(config_file=path) as services:
        opening = _balance(book, DEBIT_B.pan)
        async with PosTerminal(config, "10000001", nac=services.nac) as pos:
            buy = await pos.financial("purchase", card, amount=12_345, pin=card.pin)
            assert buy is not None and buy.approved and buy.trusted
            assert _balance(book, DEBIT_B.pan) == opening - 12_345  # posted in the issuer's own book

            wrong = await pos.financial("purchase", card, amount=100, pin="999999")
            assert wrong is not None and wrong.response_code == "55"  # verified at the issuer's HSM

            # the terminal hears nothing (the answer is dropped): its reversal undoes the purchase at the issuer
            unheard = pos.session.financial("purchase", card, amount=2_000, pin=card.pin)
            pos.save()
            assert await pos.send_raw(unheard) is not None
            assert _balance(book, DEBIT_B.pan) == opening - 14_345
            reversal = await pos.send_pending_reversal()
            assert reversal is not None and reversal.approved
            assert _balance(book, DEBIT_B.pan) == opening - 12_345

            unknown = await pos.financial("purchase", stranger, amount=100, pin=stranger.pin)
            assert unknown is not None and unknown.response_code == "14"  # a decline, nothing crashed

            pid = issuer_pid(config, bank_b)
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            stood_in = await pos.financial("purchase", card, amount=STAND_IN, pin=card.pin)
            assert stood_in is not None and stood_in.approved and stood_in.fields["38"].startswith("S")

            home = await pos.financial("purchase", config.card("6200001000000003"), amount=700, pin="123456")
            assert home is not None and home.approved  # the acquirer's own cards never needed the switch

        # the supervisor restarts issuer B; the switch's store-and-forward then delivers the stand-in advice
        with anyio.fail_after(BACK_WITHIN_S):
            while _balance(book, DEBIT_B.pan) != opening - 12_345 - STAND_IN:  # noqa: ASYNC110 - another process's book
                await anyio.sleep(0.5)

    # the PIN went CA at the acquirer's HSM, CC at the switch's, EC at issuer B's: each its own HSM and audit
    audits = {
        "acquirer": Path(config.store_path(config.hsm.audit)),
        "switch": switch_dir(config) / AUDIT_FILE,
        "issuer": issuer_dir(config, bank_b) / AUDIT_FILE,
    }
    used = {
        party: {json.loads(line)["command"] for line in path.read_text().splitlines()} for party, path in audits.items()
    }
    assert "CA" in used["acquirer"] and "CC" in used["switch"] and "EC" in used["issuer"]
    assert "CC" not in used["acquirer"] and "EC" not in used["switch"] | used["acquirer"]
    traces = config.trace_dir
    hops = read_trace(traces / "frontend.jsonl")
    assert [h["direction"] for h in hops if h["link"] == "switch"][:2] == ["out", "in"]  # the switch hop, timed
    for party in ("scheme", "issuer-bank-b", "issuer-bank-b-hsm", "scheme-hsm"):  # every new hop traces its own
        directions = {r["direction"] for r in read_trace(traces / f"{party}.jsonl")}
        assert directions == {"in", "out"}, party
    # the parties' files hold cryptograms only: no clear zone key, PIN, PIN block or full PAN of B's card
    zone_keys = [bank_b.zmk, bank_b.zak, bank_b.zpk, config.scheme.zmk, config.scheme.zak, config.scheme.zpk]
    extra = {f"zone key half {k[:4]}…": [k[:16].encode(), k[16:].encode()] for k in zone_keys}
    extra["PAN of B's card"] = [DEBIT_B.pan.encode()]
    found = secrets_in(config.data_dir, "", extra)
    assert (switch_dir(config) / "switch.toml").is_file()
    assert found == [], found


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.anyio
async def test_the_switch_legs_are_mutual_tls_under_tls_true(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACQSIM_BACKEND", "trio")  # the services, the new ones included, on trio
    config, path = _config(tmp_path, tls=True)
    card = card_fixture(DEBIT_B)
    with running_services(config_file=path) as services:
        async with PosTerminal(config, "10000001", nac=services.nac) as pos:
            buy = await pos.financial("purchase", card, amount=4_200, pin=card.pin)
            assert buy is not None and buy.approved and buy.trusted
    logs = config.log_dir
    assert "mutual TLS" in (logs / "issuer-bank-b.log").read_text()
    assert "mutual TLS" in (logs / "scheme.log").read_text()
