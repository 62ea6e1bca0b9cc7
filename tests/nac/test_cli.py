"""``acqsim nac`` as a real process: it starts, routes a frame, and ``--stats`` reads its status port."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import anyio
import anyio.abc
import pytest

from acqkit.exitcodes import EXIT_UNREACHABLE
from acqsim.cli import main as acqsim_main
from nac.cli import table_from_config
from nac.status import fetch_stats
from tests.nac.helpers import request
from tests.nac.netkit import STEP_TIMEOUT_S, EchoFrontEnd, answer_body, round_trip, start_member, terminal

pytestmark = pytest.mark.anyio


async def read_lines_until_ready(process: anyio.abc.Process) -> list[str]:
    assert process.stdout is not None
    text = ""
    with anyio.fail_after(STEP_TIMEOUT_S * 2):
        async for chunk in process.stdout:
            text += chunk.decode()
            if "READY nac" in text and text.endswith("\n"):
                return text.splitlines()
    raise AssertionError(f"no READY line in {text!r}")


async def test_nac_process_routes_and_reports(capsys: pytest.CaptureFixture[str]) -> None:
    async with anyio.create_task_group() as members:
        port, _ = await start_member(members, EchoFrontEnd("A"))
        command = [sys.executable, "-m", "acqsim", "nac", "--listen", "127.0.0.1:0", "--status-port", "0"]
        command += ["--route", f"0003=127.0.0.1:{port}", "--max-in-flight", "2"]
        async with await anyio.open_process(command) as process:
            try:
                lines = await read_lines_until_ready(process)
                assert f"route 0003 → 127.0.0.1:{port}" in lines
                status = next(line.rsplit(" ", 1)[1] for line in lines if line.startswith("NAC statistics on"))
                listen = int(next(line for line in lines if line.startswith("READY nac")).rsplit(":", 1)[1])

                status_host, status_port = status.rsplit(":", 1)

                async def member_up() -> bool:
                    document = await fetch_stats(status_host, int(status_port))
                    return bool(document["members"][f"127.0.0.1:{port}"]["up"])  # type: ignore[index]

                with anyio.fail_after(STEP_TIMEOUT_S):  # the NAC connects to the front-end just after READY
                    while not await member_up():  # noqa: ASYNC110 - another process's state
                        await anyio.sleep(0.05)
                conn = await terminal(listen)
                answer = await round_trip(conn, request(b"hello"))
                assert answer == bytes.fromhex("6000000003") + answer_body(request(b"hello"), "A")
                again = await round_trip(conn, request(b"again"))
                assert again == bytes.fromhex("6000000003") + answer_body(request(b"again"), "A")
                await conn.aclose()

                code = await anyio.to_thread.run_sync(acqsim_main, ["nac", "--stats", status])
                assert code == 0
                document = json.loads(capsys.readouterr().out)
                assert document["frames"]["delivered"] == 2
                assert document["members"][f"127.0.0.1:{port}"]["up"] is True
            finally:
                process.send_signal(signal.SIGINT)
                with anyio.fail_after(STEP_TIMEOUT_S):
                    await process.wait()
        members.cancel_scope.cancel()


def test_stats_of_a_nac_that_is_not_running(capsys: pytest.CaptureFixture[str]) -> None:
    assert acqsim_main(["nac", "--stats", "127.0.0.1:1"]) == EXIT_UNREACHABLE  # a peer that does not answer
    assert capsys.readouterr().err.startswith("acqsim nac: no NAC status port answers at 127.0.0.1:1: ")


def test_routes_listen_and_status_port_from_a_configuration(tmp_path: Path) -> None:
    config = tmp_path / "acqsim.toml"
    config.write_text(
        "[frontend]\nport = 6003\n[nac]\nport = 6000\nstatus_port = 6001\n"
        '[nac.routes]\n"0003" = ["frontend", "127.0.0.1:6004"]\n"00a0" = ["127.0.0.1:6005"]\n'
    )
    table, listen, status_port = table_from_config(config)
    assert (listen.port, status_port) == (6000, 6001)
    assert [str(m) for m in table.groups["0003"]] == ["127.0.0.1:6003", "127.0.0.1:6004"]
    assert table.group_for("00A0") == "00A0"
    default_table, _, _ = table_from_config(None)
    assert default_table.group_for("0003") == "0003"
