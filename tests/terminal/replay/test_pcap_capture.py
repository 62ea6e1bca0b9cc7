"""pcap import end to end: tshark (through dumpcap, Wireshark's capture engine) records a real acqsim run on the
loopback interface as pcapng; ``acqsim replay --pcap`` pairs each captured request with its captured answer — telling
the terminal's side from the NAC's by the connection's SYN, as ephemeral ports give no order — and replays it.

Capturing needs tshark and the right to capture on ``lo`` (root or CAP_NET_RAW): without them the test is
skipped and says why. No sleeps: tshark prints each packet's TCP payload length as it writes it, and the test
waits (with a deadline) until every frame's packet is in the file before stopping it."""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from acqkit.config import Endpoint
from acqsim.cli import main
from acqsim.processes import running_processes
from terminal.replay.pcap import read_pcap

CAPTURE_TIMEOUT_S = 30.0
#: How long tshark may stay silent before the NAC is nudged (see ``_nudge``).
NUDGE_S = 0.5
#: Sign-on, purchase, balance inquiry: three requests, three answers, one TCP segment each on loopback.
FRAMES = 6


def _start_capture(port: int, out: Path) -> subprocess.Popen[bytes]:
    tshark = shutil.which("tshark")
    if tshark is None:
        pytest.skip("tshark is not installed (Debian package tshark)")
    process = subprocess.Popen(
        [tshark, "-i", "lo", "-f", f"tcp port {port}", "-w", str(out), "-P", "-l", "-T", "fields", "-e", "tcp.len"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stderr is not None
    seen = []
    for line in process.stderr:  # "Capturing on 'Loopback: lo'" once it captures
        seen.append(line.decode(errors="replace"))
        if line.startswith(b"Capturing on"):
            return process
    process.wait(CAPTURE_TIMEOUT_S)
    pytest.skip("tshark cannot capture on lo here: " + "".join(seen).strip())


def _nudge(nac: Endpoint) -> None:
    """A connection opened and closed at the NAC: packets without data, which make the capture hand over any
    packets the kernel still holds in a capture block not yet full."""
    with socket.create_connection((nac.host, nac.port), timeout=CAPTURE_TIMEOUT_S):
        pass


def _wait_for_data_packets(process: subprocess.Popen[bytes], count: int, nac: Endpoint) -> None:
    """Until tshark has written ``count`` packets that carry data (within ``CAPTURE_TIMEOUT_S``). Its output
    is read from the pipe unbuffered, so that nothing read waits in a buffer the selector cannot see; while
    it is silent the NAC is nudged every ``NUDGE_S``."""
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + CAPTURE_TIMEOUT_S
    output = b""
    while (carrying := sum(line.strip() not in (b"", b"0") for line in output.split(b"\n")[:-1])) < count:
        left = deadline - time.monotonic()
        assert left > 0, f"tshark wrote {carrying} of {count} data packets"
        if not selector.select(min(left, NUDGE_S)):
            _nudge(nac)
            continue
        chunk = os.read(process.stdout.fileno(), 4096)
        assert chunk, f"tshark ended after {carrying} of {count} data packets"
        output += chunk


def test_a_pcapng_capture_of_a_real_run_replays_against_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    capture = tmp_path / "run.pcapng"
    with running_processes(data_dir=data) as nac:
        tshark = _start_capture(nac.port, capture)
        try:
            common = ("--data-dir", str(data), "--nac", str(nac))
            assert main(["send", *common, "--amount", "3.21", "purchase", "--json"]) == 0
            assert main(["send", *common, "balance", "--json"]) == 0
            capsys.readouterr()
            _wait_for_data_packets(tshark, FRAMES, nac)
        finally:
            tshark.send_signal(signal.SIGINT)  # tshark closes the file and ends
            tshark.communicate(timeout=CAPTURE_TIMEOUT_S)
        assert capture.read_bytes()[:4] == bytes.fromhex("0A0D0D0A")  # pcapng, as tshark writes by default

        frames = list(read_pcap(capture))
        requests = [f for f in frames if f.to_host]
        assert len(requests) == 3 and len(frames) == FRAMES  # sign-on, purchase, balance; each with its answer

        # the balance moved and the batch number is the terminal's current one: those two fields differ
        code = main(["replay", "--pcap", str(capture), "--against", str(nac), "--ignore", "54,60", "--json"])
        lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    outcomes = {(line["mti"], line["outcome"]) for line in lines if "outcome" in line}
    assert outcomes == {("0800", "skipped"), ("0200", "same")}
    assert code == 0 and lines[-1] == {"exchanges": 3, "bad": 0}
