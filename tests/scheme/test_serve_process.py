"""``acqsim scheme serve`` as its own process: its configuration file, the READY line, serving the switch link,
SIGTERM; a bad file named; an unreachable HSM exits 3."""

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
from acqsim.fourparty import ACQUIRER_ID, SWITCH_ID, ZAK_ACQUIRER, ZPK_ACQUIRER
from core_ledger.api import LedgerOp
from hsm_sim.client import HsmClient, KeyType
from hsm_sim.keys import Lmk, encrypt_under_lmk
from hsm_sim.server import serve as serve_hsm
from scheme.client import SwitchLinkClient, SwitchRequest, ZoneMac
from scheme.config import load_switch_config
from tests.cli_helpers import STARTUP_S, announced_port
from wire.constants import ResponseCode

pytestmark = pytest.mark.anyio
#: The switch HSM's TEST LMK in this test (a test of the HSM's neighbours may hold one; services may not).
SWITCH_LMK = Lmk.from_hex("C1C1C1C1C1C1C1C1E0E0E0E0E0E0E0E0")


def _config(tmp_path: Path, hsm_port: int) -> Path:
    zak = encrypt_under_lmk(SWITCH_LMK, KeyType.ZAK, ZAK_ACQUIRER)
    zpk = encrypt_under_lmk(SWITCH_LMK, KeyType.ZPK, ZPK_ACQUIRER)
    path = tmp_path / "switch.toml"
    path.write_text(
        f"""switch_id = "{SWITCH_ID}"
listen = "127.0.0.1:0"
hsm = "127.0.0.1:{hsm_port}"
journal = "data/switch-journal.sqlite3"
stand_in_limit = 10000

[[members]]
institution_id = "{ACQUIRER_ID}"
name = "ACQSIM TEST ACQUIRER"
zak = "{zak}"
zpk = "{zpk}"

[[bins]]
prefix = "623050"
issuer_id = "63050000"
card_type = "D"
""",
        encoding="utf-8",
    )
    return path


async def test_the_switch_runs_as_a_process_from_its_config(tmp_path: Path) -> None:
    async with anyio.create_task_group() as tg:
        hsm_port = await tg.start(functools.partial(serve_hsm, "127.0.0.1", 0, lmk=SWITCH_LMK))
        config = _config(tmp_path, hsm_port)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        argv = [sys.executable, "-m", "acqsim", "scheme", "serve", "--config", str(config)]
        async with await anyio.open_process(argv, env=env, cwd=Path(__file__).parents[2]) as process:
            assert process.stdout is not None
            port = await announced_port(process.stdout, "scheme")
            async with await HsmClient.connect("127.0.0.1", hsm_port) as hsm:
                # the acquirer's side of the zone, here under the same TEST LMK as the switch's
                zone = ZoneMac(hsm, encrypt_under_lmk(SWITCH_LMK, KeyType.ZAK, ZAK_ACQUIRER))
                async with SwitchLinkClient(
                    "127.0.0.1", port, own_id=ACQUIRER_ID, peer_id=SWITCH_ID, zone=zone
                ) as client:
                    request = SwitchRequest(
                        op=LedgerOp.PURCHASE,
                        acquirer_id=ACQUIRER_ID,
                        pan="4111111111111111",
                        amount=100,
                        stan="000001",
                        rrn="120400000100",
                        terminal_id="10000001",
                        merchant_id="898100000000001",
                        local_time="093000",
                        local_date="1204",
                        transmission="1204093000",
                    )
                    answer = await client.exchange(request.fields())
                    assert answer.fields["39"] == ResponseCode.INVALID_CARD  # unknown BIN: a decline
            process.send_signal(signal.SIGTERM)
            with anyio.fail_after(STARTUP_S):
                assert await process.wait() == 0
        assert (tmp_path / "data" / "switch-journal.sqlite3").exists()
        tg.cancel_scope.cancel()


def test_a_bad_config_is_named_and_an_unreachable_hsm_exits_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _config(tmp_path, 9)
    text = path.read_text()
    path.write_text(text.replace("stand_in_limit", "stand_in_limt"))
    with pytest.raises(ConfigError, match="unknown key 'stand_in_limt'"):
        load_switch_config(path)
    path.write_text(text.replace('card_type = "D"', 'card_type = "X"'))
    with pytest.raises(ConfigError, match=r"bins\[0\]|'X'"):
        load_switch_config(path)
    path.write_text(text.replace('hsm = "127.0.0.1:9"', 'hsm = "127.0.0.1:1"'))
    assert main(["scheme", "serve", "--config", str(path), "--peer-wait", "0"]) == 3
    assert "HSM" in capsys.readouterr().err
