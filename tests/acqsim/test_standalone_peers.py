"""Services started on their own with a required peer unreachable: after their retry window (``--peer-wait``)
they exit 3 with one line naming the peer and its address. Real processes; the peer's port was bound and
closed, so nothing listens there."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from acqkit.config import AcqsimConfig
from acqkit.exitcodes import EXIT_UNREACHABLE
from acqkit.keystore import write_key_store
from acqkit.peerclient import PeerUnavailable, connect_within
from tests.cli_helpers import closed_port, run_acqsim
from tests.keyring import key_store_for

#: The retry window given to the services here: short, the peer never comes.
PEER_WAIT_S = "0.3"


def run(*argv: str, cwd: Path) -> tuple[int, list[str]]:
    result = run_acqsim(*argv, cwd=cwd)
    assert "Traceback" not in result.stderr
    return result.returncode, [line for line in result.stderr.splitlines() if line.startswith("acqsim ")]


def test_a_frontend_whose_hsm_never_answers_exits_3_naming_it(tmp_path: Path) -> None:
    hsm, ledger = closed_port(), closed_port()
    key_store = tmp_path / "keystore.json"  # the front-end's keys, as the key ceremony left them
    write_key_store(key_store, key_store_for(AcqsimConfig.default(data_dir=tmp_path)))
    argv = ["frontend", "--port", "0", "--hsm", f"127.0.0.1:{hsm}", "--ledger", f"127.0.0.1:{ledger}"]
    argv += ["--key-store", str(key_store)]
    code, lines = run(*argv, "--db", str(tmp_path / "journal.db"), "--peer-wait", PEER_WAIT_S, cwd=tmp_path)
    assert code == EXIT_UNREACHABLE
    [line] = lines
    assert line.startswith(f"acqsim frontend: HSM at 127.0.0.1:{hsm}: connect: ")
    assert line.endswith(f"(still so after {PEER_WAIT_S} s)")


def test_a_nac_with_no_front_end_on_a_route_exits_3_naming_it(tmp_path: Path) -> None:
    frontend = closed_port()
    argv = ["nac", "--listen", "127.0.0.1:0", "--route", f"0003=127.0.0.1:{frontend}"]
    code, lines = run(*argv, "--peer-wait", PEER_WAIT_S, cwd=tmp_path)
    assert code == EXIT_UNREACHABLE
    assert lines == [
        f"acqsim nac: front-end at 127.0.0.1:{frontend}: connect: no member of route group 0003 within {PEER_WAIT_S} s"
    ]


def test_a_load_against_nothing_exits_3_naming_the_address(tmp_path: Path) -> None:
    nac = closed_port()
    argv = ["load", "--against", f"127.0.0.1:{nac}", "--terminals", "1", "--rate", "1", "--duration", "1"]
    code, lines = run(*argv, cwd=tmp_path)
    assert code == EXIT_UNREACHABLE
    [line] = lines
    assert line.startswith(f"acqsim load: 127.0.0.1:{nac}: ")


@pytest.mark.anyio
async def test_connect_within_tries_again_until_the_peer_answers() -> None:
    tries: list[int] = []

    async def connect() -> str:
        tries.append(len(tries))
        if len(tries) < 3:
            raise PeerUnavailable("ledger", "127.0.0.1:1", "connect", "refused")
        return "connected"

    assert await connect_within(connect, window=30.0) == "connected"
    assert tries == [0, 1, 2]


@pytest.mark.anyio
async def test_connect_within_gives_up_with_the_last_error_once_the_window_is_over() -> None:
    async def refused() -> str:
        raise PeerUnavailable("HSM", "127.0.0.1:1", "connect", "refused")

    with pytest.raises(PeerUnavailable, match=re.escape("HSM at 127.0.0.1:1: connect: refused")):
        await connect_within(refused, window=0.0)
