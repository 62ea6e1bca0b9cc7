"""``acqsim ledger serve`` as a real process stopped the way the supervisor stops it (SIGTERM): it ends through
its own cleanup, exit 0, and the trace records of the last request answered are in its trace file — not lost
with the process at SIGTERM's default action (every service runs under ``acqkit.runner.run_service``)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

from core_ledger.api import LedgerOp
from core_ledger.hostlink import request_fields
from tests.core_ledger.helpers import GOOD, request
from wire.codec import decode_host, encode_host
from wire.framing import frame
from wire.trace import read_trace

#: Time for the process to start (Python imports, schema, seeding) and to end after SIGTERM.
PROCESS_TIMEOUT_S = 30.0


def test_sigterm_ends_the_ledger_cleanly_with_its_last_trace_records_written(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "acqsim", "ledger", "serve", "--db", str(tmp_path / "ledger.sqlite3")]
    argv += ["--host", "127.0.0.1", "--port", "0", "--trace-dir", str(tmp_path / "traces")]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert process.stdout is not None
        ready = ""
        while not ready.startswith("READY ledger "):  # the child flushes the line; EOF here means it died
            ready = process.stdout.readline()
            assert ready, "the ledger exited before READY"
        port = int(ready.rsplit(":", 1)[1])
        purchase = request(LedgerOp.PURCHASE, GOOD, 100)
        with socket.create_connection(("127.0.0.1", port), timeout=PROCESS_TIMEOUT_S) as link:
            link.sendall(frame(encode_host(request_fields(purchase))))
            answer = b""
            while len(answer) < 2 or len(answer) < 2 + int.from_bytes(answer[:2], "big"):
                chunk = link.recv(4096)
                assert chunk, "the ledger closed the link without answering"
                answer += chunk
        assert decode_host(answer[2:])["39"] == "00"
        process.send_signal(signal.SIGTERM)  # at once: well inside the trace's 50 ms flush interval
        assert process.wait(timeout=PROCESS_TIMEOUT_S) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
    records = read_trace(tmp_path / "traces" / "ledger.jsonl")
    traced = [(r["direction"], r["message"]["fields"].get("37")) for r in records]
    assert traced == [("in", purchase.rrn), ("out", purchase.rrn)]
