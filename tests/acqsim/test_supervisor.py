"""The supervisor's restart policy, ``acqsim up`` as real processes, and the small CLI commands."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from acqkit.config import AcqsimConfig, config_to_toml
from acqsim.cli import main
from acqsim.supervisor import MAX_RESTARTS, RestartPolicy, service_commands, with_ephemeral_ports


def test_restart_policy_backs_off_then_gives_up() -> None:
    policy = RestartPolicy()
    pauses = [policy.after_death(float(t)) for t in range(MAX_RESTARTS)]
    assert all(p is not None for p in pauses)
    assert pauses == sorted(p or 0.0 for p in pauses) and pauses[0] == 0.5
    assert policy.after_death(float(MAX_RESTARTS)) is None
    assert RestartPolicy().after_death(0.0) == 0.5


def test_service_commands_in_dependency_order_with_ephemeral_ports(tmp_path: Path) -> None:
    config = with_ephemeral_ports(AcqsimConfig.default(data_dir=tmp_path))
    specs = service_commands(config, None)
    # the wallet host before the front-end that charges QR payments on it (issue #20)
    assert [s.name for s in specs] == ["hsm", "ledger", "wallet", "frontend", "nac", "merchant"]
    assert len({s.endpoint.port for s in specs}) == 6
    by_name = {s.name: s.argv for s in specs}
    assert f"--route=0003=127.0.0.1:{config.frontend.listen.port}" in by_name["nac"]
    assert by_name["frontend"][by_name["frontend"].index("--wallet") + 1] == str(config.wallet.listen)
    for name in ("hsm", "ledger", "frontend"):  # every ISO 8583 service traces into the data folder
        assert by_name[name][by_name[name].index("--trace-dir") + 1] == str(config.trace_dir)


def test_up_starts_four_processes_and_stops_them_cleanly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, "-m", "acqsim", "up", "--ephemeral-ports", "--data-dir", str(tmp_path)]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env) as process:
        assert process.stdout is not None
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            lines.append(line)
            if "all services up" in line or not line:
                break
        assert any("all services up" in line for line in lines), lines
        nac = next(line.split()[-1] for line in lines if line.startswith("nac"))
        config = _config(tmp_path)
        assert main(["pos", "--nac", nac, "--terminal", "10000001", "echo", "--config", str(config)]) == 0
        _pos_exit_codes(nac, config, capsys)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    assert (tmp_path / "logs" / "ledger.log").exists()
    assert {p.name for p in (tmp_path / "traces").glob("*.jsonl")} >= {"hsm.jsonl", "nac.jsonl", "frontend.jsonl"}


def _pos_exit_codes(nac: str, config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``acqsim pos`` tells scripts what happened: 0 approved, 1 declined, 2 usage error, 3 no answer."""
    pos = ["pos", "--nac", nac, "--config", str(config), "--json"]
    capsys.readouterr()
    assert main([*pos, "purchase", "1.00"]) == 0
    approved = json.loads(capsys.readouterr().out)
    assert approved["response_code"] == "00" and approved["mac_verified"] and len(approved["rrn"]) == 12
    assert main([*pos, "purchase", "1.00", "--card", "6200003000000033"]) == 1  # the lost test card
    assert json.loads(capsys.readouterr().out)["response_code"] == "41"
    assert main([*pos, "purchase", "1.234"]) == 2
    assert main([*pos, "purchase", "2.00", "--chip"]) == 0  # chip cards: issue #18
    assert json.loads(capsys.readouterr().out)["approved"]
    assert main([*pos, "purchase", "0.50", "--contactless"]) == 0
    assert main([*pos, "purchase", "2.00", "--fallback"]) == 0
    capsys.readouterr()
    assert main([*pos, "purchase", "3.00", "--chip", "--card", "62000060000000061"]) == 1  # declines after approval
    declined = json.loads(capsys.readouterr().out)
    assert declined["response_code"] == "00" and declined["card_declined"] and not declined["approved"]
    assert main([*pos, "balance", "--chip"]) == 2
    signature = config.parent / "signature.json"
    signature.write_text("[[[10, 100], [60, 40], [120, 110]]]")
    mpos = ["pos", "--nac", nac, "--config", str(config), "--terminal", "10000002"]
    assert main([*mpos, "purchase", "4.20", "--reader", "--signature", str(signature)]) == 0
    slips = list((config.parent / "pos" / "receipts").glob("10000002-*.html"))
    assert len(slips) == 1 and "M10 100 L60 40" in slips[0].read_text() and slips[0].with_suffix(".json").exists()
    assert "e-receipt written" in capsys.readouterr().out
    unreachable = ["pos", "--nac", "127.0.0.1:9", "--config", str(config), "--json", "echo"]
    assert main(unreachable) == 3
    assert json.loads(capsys.readouterr().out)["answered"] is False


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "acqsim.toml"
    path.write_text(f'data_dir = "{tmp_path / "pos"}"\n')
    return path


def test_config_show_prints_test_material(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "show", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert "TEST MATERIAL" in shown["note"]
    assert shown["terminals"][0]["tmk"] == "0123456789ABCDEFFEDCBA9876543210"
    assert shown["cards"][0]["track2"].startswith("6200001000000003=3012201")
    assert main(["config", "show"]) == 0
    assert "PIN 123456" in capsys.readouterr().out


def test_up_fails_naming_the_service_whose_port_another_process_holds(tmp_path: Path) -> None:
    """#16: readiness is the service's own READY line, not a probe another stack could answer: a port taken
    fails `acqsim up` with the service, its address and the reason, and no 'all services up'."""
    import socket

    config = with_ephemeral_ports(AcqsimConfig.default(data_dir=tmp_path))
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", config.hsm.listen.port))
        squatter.listen()  # it would answer a TCP probe
        path = tmp_path / "acqsim.toml"
        path.write_text(config_to_toml(config), encoding="utf-8")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        argv = [sys.executable, "-m", "acqsim", "up", "--config", str(path)]
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert done.returncode == 1
    assert "all services up" not in done.stdout
    assert f"hsm did not start on 127.0.0.1:{config.hsm.listen.port}" in done.stderr
    assert "address already in use" in done.stderr.lower() or "errno 98" in done.stderr.lower()
