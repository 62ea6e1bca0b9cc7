"""``acqsim issuer serve`` as its own process: its configuration, the READY line, a request from the switch
answered by its own ledger, SIGTERM; a bad file named; an unreachable HSM or ledger exits 3."""

from __future__ import annotations

import functools
import os
import signal
import sys
from pathlib import Path

import anyio
import pytest

from acqkit.config import ConfigError
from acqsim.cli import main
from acqsim.fourparty import ACQUIRER_ID, DEBIT_B, ISSUER_B_ID, PVK_ISSUER_B, SWITCH_ID, ZAK_ISSUER_B, ZPK_ISSUER_B
from core_ledger.api import LedgerOp
from core_ledger.seed import CardSeed
from core_ledger.server import serve as serve_ledger
from core_ledger.setup import open_service, seed
from hsm_sim.client import HsmClient, KeyType
from hsm_sim.keys import Lmk, encrypt_under_lmk
from hsm_sim.server import serve as serve_hsm
from issuer_host.config import load_issuer_config
from scheme.client import SwitchLinkClient, SwitchRequest, ZoneMac
from tests.cli_helpers import STARTUP_S, announced_port

pytestmark = pytest.mark.anyio
#: The issuer HSM's TEST LMK in this test (tests of the HSM's neighbours may hold one; services may not).
ISSUER_LMK = Lmk.from_hex("D5D5D5D5D5D5D5D5F1F1F1F1F1F1F1F1")


def _config(tmp_path: Path, hsm_port: int, ledger_port: int) -> Path:
    keys = {
        name: encrypt_under_lmk(ISSUER_LMK, key_type, clear)
        for name, key_type, clear in (
            ("zak", KeyType.ZAK, ZAK_ISSUER_B),
            ("zpk", KeyType.ZPK, ZPK_ISSUER_B),
            ("pvk", KeyType.PVK, PVK_ISSUER_B),
        )
    }
    path = tmp_path / "issuer.toml"
    path.write_text(
        f'issuer_id = "{ISSUER_B_ID}"\nswitch_id = "{SWITCH_ID}"\nlisten = "127.0.0.1:0"\n'
        f'hsm = "127.0.0.1:{hsm_port}"\nledger = "127.0.0.1:{ledger_port}"\n'
        + "".join(f'{name} = "{value}"\n' for name, value in keys.items()),
        encoding="utf-8",
    )
    return path


async def test_the_issuer_host_runs_as_a_process_from_its_config(tmp_path: Path) -> None:
    service = open_service(str(tmp_path / "issuer.sqlite3"))
    seed(service.store, service.state, cards=[CardSeed(pan=DEBIT_B.pan, expiry="3012", balance=10_000)])
    async with anyio.create_task_group() as tg:
        hsm_port = await tg.start(functools.partial(serve_hsm, "127.0.0.1", 0, lmk=ISSUER_LMK))
        ledger_port = await tg.start(functools.partial(serve_ledger, "127.0.0.1", 0, service=service))
        config = _config(tmp_path, hsm_port, ledger_port)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        argv = [sys.executable, "-m", "acqsim", "issuer", "serve", "--config", str(config)]
        async with await anyio.open_process(argv, env=env, cwd=Path(__file__).parents[2]) as process:
            assert process.stdout is not None
            port = await announced_port(process.stdout, "issuer")
            async with await HsmClient.connect("127.0.0.1", hsm_port) as hsm:
                # the switch's side of the zone, here under the same TEST LMK as the issuer's
                zone = ZoneMac(hsm, encrypt_under_lmk(ISSUER_LMK, KeyType.ZAK, ZAK_ISSUER_B))
                async with SwitchLinkClient(
                    "127.0.0.1", port, own_id=SWITCH_ID, peer_id=ISSUER_B_ID, zone=zone
                ) as switch:
                    request = SwitchRequest(
                        op=LedgerOp.PURCHASE,
                        acquirer_id=ACQUIRER_ID,
                        pan=DEBIT_B.pan,
                        amount=2_500,
                        stan="000001",
                        rrn="120400000100",
                        terminal_id="10000001",
                        merchant_id="898100000000001",
                        local_time="093000",
                        local_date="1204",
                        transmission="1204093000",
                    )
                    answer = await switch.exchange({**request.fields(), "100": ISSUER_B_ID})
                    assert answer.fields["39"] == "00" and answer.fields["38"]
            process.send_signal(signal.SIGTERM)
            with anyio.fail_after(STARTUP_S):
                assert await process.wait() == 0
        card = service.state.cards[DEBIT_B.pan]
        assert service.state.accounts[card.account_id].balance == 10_000 - 2_500
        tg.cancel_scope.cancel()
    service.store.close()


def test_a_bad_config_is_named_and_unreachable_peers_exit_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _config(tmp_path, 1, 1)
    text = path.read_text()
    path.write_text(text + 'stand_in = "yes"\n')
    with pytest.raises(ConfigError, match="unknown key 'stand_in'"):
        load_issuer_config(path)
    path.write_text(text.replace('zak = "U', 'zak = "X'))
    with pytest.raises(ConfigError, match="zak must be U"):
        load_issuer_config(path)
    path.write_text(text)
    assert main(["issuer", "serve", "--config", str(path), "--peer-wait", "0"]) == 3
    assert "HSM" in capsys.readouterr().err
