"""``acqsim chaos``: ``acqsim up`` under load, each chosen service killed -9 in turn, then reconcile.

The stack runs as processes (the supervisor restarts the dead) on free loopback ports over its own data
folder. The load generator (``acqsim load``, purchases only, so money is easy to account for) runs against
the NAC; at even intervals one service process gets SIGKILL and the run waits for the supervisor's
"<service> listening on" line for its restart (an event, under ``RESTART_TIMEOUT_S``). After the load, the
front-end's queued reversals get ``DRAIN_TIMEOUT_S`` to reach the ledger, then the stack stops and
:mod:`acqsim.reconcile` compares journal and ledger. Verdict clean: reconcile clean, the card accounts
debited exactly the approved purchases, and no unanswered purchase left posted.
"""

from __future__ import annotations

import dataclasses
import json
import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Final

from acqkit.config import AcqsimConfig, Endpoint, config_to_toml
from acqsim.reconcile import Reconciliation, reconcile_stores
from core_ledger.setup import open_store
from terminal.load.runner import with_load_terminals

SERVICES: Final = ("hsm", "ledger", "frontend", "nac")
STARTUP_TIMEOUT_S: Final = 60.0
RESTART_TIMEOUT_S: Final = 30.0
DRAIN_TIMEOUT_S: Final = 30.0
STOP_TIMEOUT_S: Final = 30.0
#: Pacing of the drain check (not synchronisation: the condition is re-read each time).
DRAIN_POLL_S: Final = 0.5
LOAD_TERMINALS: Final = 10


class ChaosError(RuntimeError):
    """The stack did not start, or a killed service did not come back in time."""


@dataclasses.dataclass(slots=True)
class ChaosResult:
    sent: int = 0
    approved: int = 0
    declined: int = 0
    unanswered: int = 0
    kills: list[str] = dataclasses.field(default_factory=list)
    restart_s: dict[str, float] = dataclasses.field(default_factory=dict)
    debited: int = 0  # card balances before − after
    approved_amount: int = 0  # sum of approved purchases in the journal
    reconcile: Reconciliation | None = None
    problems: list[str] = dataclasses.field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.problems and self.reconcile is not None and self.reconcile.clean

    def to_json(self) -> dict[str, object]:
        return {
            "sent": self.sent,
            "approved": self.approved,
            "declined": self.declined,
            "unanswered": self.unanswered,
            "kills": self.kills,
            "restart_s": self.restart_s,
            "debited": self.debited,
            "approved_amount": self.approved_amount,
            "reconcile": self.reconcile.to_json() if self.reconcile else None,
            "problems": self.problems,
            "verdict": "clean" if self.clean else "NOT clean",
        }


def _text(instance: int | None) -> str | None:
    return None if instance is None else str(instance)


class _Stack:
    """``acqsim up`` as a child process, its output lines delivered to a queue by a reader thread."""

    def __init__(self, config_file: Path) -> None:
        argv = [sys.executable, "-m", "acqsim", "up", "--ephemeral-ports", "--config", str(config_file)]
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.nac: Endpoint | None = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put("")

    def wait_for(self, text: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if line.startswith("nac") and "listening on" in line:
                self.nac = Endpoint.parse(line.split()[-1])
            if text in line:
                return line
            if not line:
                raise ChaosError(f"acqsim up exited (code {self.process.poll()}) before {text!r}")
        raise ChaosError(f"no {text!r} from acqsim up within {timeout:.0f} s")

    def service_pid(self, name: str, instance: int | None = None) -> int:
        """The pid of the supervisor's child running ``name`` (front-end ``instance`` of a pool; read from
        /proc: Linux)."""
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            member = argv[argv.index(b"--instance") + 1].decode() if b"--instance" in argv else None
            if int(stat[1]) == self.process.pid and name.encode() in argv and member == _text(instance):
                return int(entry.name)
        raise ChaosError(f"no running {name} process under acqsim up")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._reader.join(timeout=STOP_TIMEOUT_S)  # the pipe ends with the process
        if self.process.stdout is not None:
            self.process.stdout.close()


def card_balances(ledger_db: str) -> int:
    store = open_store(ledger_db)
    try:
        state = store.load()
    finally:
        store.close()
    card_accounts = {card.account_id for card in state.cards.values()}
    return sum(a.balance for a in state.accounts.values() if a.account_id in card_accounts)


def approved_purchases(journals: list[Path]) -> int:
    total = 0
    for journal in journals:
        db = sqlite3.connect(f"{journal.resolve().as_uri()}?mode=ro", uri=True)
        try:
            (amount,) = db.execute(
                "SELECT COALESCE(SUM(amount), 0) FROM txns WHERE kind = 'purchase' AND status = 'approved'"
            ).fetchone()
        finally:
            db.close()
        total += int(amount)
    return total


def run_chaos(
    config: AcqsimConfig,
    folder: Path,
    *,
    duration: float,
    rate: float,
    kill: tuple[str, ...],
    frontends: int = 1,
) -> ChaosResult:
    """With ``frontends`` above 1 a pool runs behind a sticky NAC, and ``frontend`` in ``kill`` is member 1."""
    services = dataclasses.replace(with_load_terminals(config, LOAD_TERMINALS), data_dir=folder / "data", trace=False)
    services = dataclasses.replace(services, frontend=dataclasses.replace(services.frontend, instances=frontends))
    config_file = folder / "chaos.toml"
    config_file.write_text(config_to_toml(services), encoding="utf-8")
    pool = frontends > 1
    journals = [Path(services.frontend_db(k if pool else None)) for k in range(1, frontends + 1)]
    ledger = services.store_path(services.ledger.db)
    result = ChaosResult()
    stack = _Stack(config_file)
    try:
        stack.wait_for("all services up", STARTUP_TIMEOUT_S)
        assert stack.nac is not None
        before = card_balances(ledger)
        load = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            [sys.executable, "-m", "acqsim", "load", "--against", str(stack.nac), "--terminals", str(LOAD_TERMINALS),
             "--rate", str(rate), "--duration", str(duration), "--mix", "purchase=100", "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        started = time.monotonic()
        for i, name in enumerate(kill):
            due = started + duration * (i + 1) / (len(kill) + 1)
            time.sleep(max(0.0, due - time.monotonic()))  # pacing
            member = 1 if pool and name == "frontend" else None
            os.kill(stack.service_pid(name, member), signal.SIGKILL)
            killed_at = time.monotonic()
            result.kills.append(name)
            title = f"{name}-{member}" if member is not None else name
            stack.wait_for(f"{title:<9} listening on", RESTART_TIMEOUT_S)
            result.restart_s[name] = round(time.monotonic() - killed_at, 2)
        out, _ = load.communicate(timeout=duration + STARTUP_TIMEOUT_S)
        counts: dict[str, int] = json.loads(out.strip().splitlines()[-1])["counts"] if out.strip() else {}
        result.sent = sum(counts.values())
        result.approved = counts.get("00", 0)
        result.unanswered = counts.get("no answer", 0)
        result.declined = result.sent - result.approved - result.unanswered
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while time.monotonic() < deadline and reconcile_stores(journals, ledger).pending_reversals:
            time.sleep(DRAIN_POLL_S)  # pacing: the front-end retries queued reversals on its own schedule
        after = card_balances(ledger)
    finally:
        stack.stop()
    result.debited = before - after
    result.approved_amount = approved_purchases(journals)
    result.reconcile = reconcile_stores(journals, ledger)
    if result.debited != result.approved_amount:
        result.problems.append(
            f"card accounts debited {result.debited}, approved purchases in the journal total {result.approved_amount}"
        )
    if result.reconcile.pending_reversals:
        result.problems.append(f"{result.reconcile.pending_reversals} reversals still queued after the drain")
    return result


def render(result: ChaosResult) -> str:
    lines = [
        f"sent {result.sent}: approved {result.approved}, declined {result.declined}, unanswered {result.unanswered}",
        "killed: " + ", ".join(f"{n} (back in {result.restart_s.get(n, '?')} s)" for n in result.kills),
        f"money: card accounts debited {result.debited}, approved purchases {result.approved_amount}",
    ]
    if result.reconcile is not None:
        from acqsim.reconcile import render as render_reconcile

        lines.append(render_reconcile(result.reconcile))
    lines.extend(f"problem: {p}" for p in result.problems)
    lines.append("verdict: " + ("clean" if result.clean else "NOT clean"))
    return "\n".join(lines)
