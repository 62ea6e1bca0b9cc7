"""The Wireshark dissector: the shipped file is the one generated from the specs, it installs, and tshark uses
it to name the fields of a capture acqsim exported from a real traced purchase (and of a host-link capture)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import anyio
import dpkt
import pytest

from acqkit.config import DEFAULT_LEDGER_PORT, AcqsimConfig
from acqsim.cli import main
from acqsim.cmd_wireshark import shipped_path
from acqsim.pipeline import running_pipeline
from acqsim.wireshark.generate import PLUGIN_NAME, generate, shipped
from terminal.pos import PosTerminal
from wire.codec import encode_host
from wire.framing import frame

TSHARK_TIMEOUT_S = 60


def _tshark() -> str:
    found = shutil.which("tshark")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("tshark is not installed: .ci/run installs Debian's package tshark")
        pytest.skip("tshark is not installed (apt-get install tshark)")
    return found


def _run_tshark(capture: Path, *args: str) -> str:
    result = subprocess.run(
        [_tshark(), "-r", str(capture), "-X", f"lua_script:{shipped_path()}", *args],
        capture_output=True,
        text=True,
        timeout=TSHARK_TIMEOUT_S,
        check=True,
    )
    assert "Lua: Error" not in result.stderr, result.stderr
    return result.stdout


def test_shipped_dissector_is_the_generated_one() -> None:
    assert shipped() == generate(), "run `acqsim wireshark generate` after changing wire/specs.py"
    assert main(["wireshark", "generate", "--check"]) == 0


def test_generated_tables_follow_the_specs() -> None:
    lua = generate()
    assert '[39] = { name = "Response Code", len_type = 0, len_enc = "ascii", enc = "ascii", max = 2' in lua
    assert '[35] = { name = "Track 2 Data", len_type = 1, len_enc = "bcd", enc = "b", max = 37' in lua
    assert '[23] = { name = "Card Sequence Number"' in lua and 'pad = "left"' in lua
    assert '["55"] = "incorrect PIN",' in lua
    assert f"local HOST_PORTS = {{ {DEFAULT_LEDGER_PORT} }}" in lua


def test_install_copies_the_plugin(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "plugins"
    assert main(["wireshark", "install", "--dir", str(target)]) == 0
    assert (target / PLUGIN_NAME).read_text() == shipped()
    assert str(target / PLUGIN_NAME) in capsys.readouterr().out


async def _traced_purchase(config: AcqsimConfig) -> None:
    card = config.card("6200001000000003")
    async with (
        running_pipeline(config, trace=True) as pipeline,
        PosTerminal(config, "10000001", nac=pipeline.nac) as pos,
    ):
        await pos.sign_on()
        assert await pos.financial("purchase", card, amount=1234, pin=card.pin) is not None
        assert await pos.financial("purchase", card, amount=100, pin="000000") is not None  # wrong PIN: 55


def test_tshark_names_the_fields_of_an_exported_capture(tmp_path: Path) -> None:
    _tshark()
    config = AcqsimConfig.default(data_dir=tmp_path / "data")
    anyio.run(_traced_purchase, config)
    capture = tmp_path / "pos.pcap"
    assert main(["trace", "export", "--trace-dir", str(config.trace_dir), "--pcap", str(capture)]) == 0

    rows = _run_tshark(
        capture, "-T", "fields", "-e", "acqsim_pos.mti", "-e", "acqsim_pos.f4", "-e", "acqsim_pos.f39"
    ).splitlines()
    assert [row.split("\t") for row in rows] == [
        ["0800", "", ""],
        ["0810", "", "00"],
        ["0200", "000000001234", ""],
        ["0210", "000000001234", "00"],
        ["0200", "000000000100", ""],
        ["0210", "000000000100", "55"],
    ]
    verbose = _run_tshark(capture, "-V", "-Y", 'acqsim_pos.f39 == "55"')
    assert "acqsim POS link" in verbose
    assert "Application type: 61 (chip-capable POS)" in verbose
    assert "MTI: 0210 (financial response)" in verbose
    assert "3 Processing Code: 000000 (purchase)" in verbose
    assert "39 Response Code: 55 (incorrect PIN)" in verbose
    assert "2 Primary Account Number (PAN): 6200000000000003" in verbose  # masked by the export: digits → 0


def test_tshark_reads_the_host_link_and_flags_a_malformed_frame(tmp_path: Path) -> None:
    _tshark()
    request = encode_host(
        {"t": "0200", "2": "6200001000000003", "3": "000000", "4": "000000001234", "11": "000042", "41": "10000001"}
    )
    capture = tmp_path / "host.pcap"
    with capture.open("wb") as out:
        writer = dpkt.pcap.Writer(out)
        for index, payload in enumerate((request, b"0210" + b"Z" * 16)):
            tcp = dpkt.tcp.TCP(sport=45000, dport=DEFAULT_LEDGER_PORT, seq=1 + index * 1000, data=frame(payload))
            tcp.flags = dpkt.tcp.TH_ACK
            ip = dpkt.ip.IP(src=bytes([10, 0, 0, 1]), dst=bytes([10, 0, 0, 2]), p=6, data=tcp)
            writer.writepkt(bytes(dpkt.ethernet.Ethernet(type=dpkt.ethernet.ETH_TYPE_IP, data=ip)), ts=1.0 + index)
    verbose = _run_tshark(capture, "-V")
    assert "acqsim host link" in verbose
    assert "2 Primary Account Number (PAN): 6200001000000003" in verbose
    assert "4 Amount, Transaction: 000000001234" in verbose
    assert "Expert Info (Error/Malformed): bitmap at offset 6 is not 16 hex characters" in verbose
