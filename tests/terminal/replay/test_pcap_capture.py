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
from collections.abc import Callable
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


class _PacketLines:
    """tshark's output, one TCP payload length a line, read from the pipe unbuffered (so that nothing read
    waits in a buffer the selector cannot see)."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        self._fd = process.stdout.fileno()
        self._selector = selectors.DefaultSelector()
        self._selector.register(process.stdout, selectors.EVENT_READ)
        self._output = b""

    def lengths(self) -> list[bytes]:
        return [line.strip() for line in self._output.split(b"\n")[:-1]]

    def wait_until(self, done: Callable[[list[bytes]], bool], nac: Endpoint, what: str) -> None:
        """Until ``done(lengths)`` (within ``CAPTURE_TIMEOUT_S``); while tshark is silent the NAC is nudged
        every ``NUDGE_S``."""
        deadline = time.monotonic() + CAPTURE_TIMEOUT_S
        while not done(self.lengths()):
            left = deadline - time.monotonic()
            assert left > 0, f"tshark: {what}; seen {self.lengths()}"
            if not self._selector.select(min(left, NUDGE_S)):
                _nudge(nac)
                continue
            chunk = os.read(self._fd, 4096)
            assert chunk, f"tshark ended: {what}; seen {self.lengths()}"
            self._output += chunk


def _carrying_data(lengths: list[bytes]) -> int:
    return sum(length not in (b"", b"0") for length in lengths)


def test_a_pcapng_capture_of_a_real_run_replays_against_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    capture = tmp_path / "run.pcapng"
    with running_processes(data_dir=data) as nac:
        tshark = _start_capture(nac.port, capture)
        packets = _PacketLines(tshark)
        try:
            # the capture is on once a nudge's packets come out of it (tshark may say so a little earlier)
            packets.wait_until(bool, nac, "no packet captured")
            common = ("--data-dir", str(data), "--nac", str(nac))
            assert main(["send", *common, "--amount", "3.21", "purchase", "--json"]) == 0
            assert main(["send", *common, "balance", "--json"]) == 0
            capsys.readouterr()
            packets.wait_until(lambda seen: _carrying_data(seen) >= FRAMES, nac, f"fewer than {FRAMES} frames")
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
