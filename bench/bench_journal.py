"""The front-end journal's work for approved purchases, alone: CPU per purchase of this process (all threads:
the event loop and the journal's commit thread), with the real journal on a file (WAL, ``synchronous=FULL``)
behind the real group commit, on the backend the services run on (uvloop where installed).

Each purchase does to the journal what the front-end does for a PIN purchase (``frontend/flows/financial.py``):
a PIN try reserved (inline), the request journaled (group commit: row, RRN, sealed ledger request), the try
released (inline), the answer journaled (group commit). ``IN_FLIGHT`` purchases run at once, so a batch holds
about that many writes, as at the front-end under load; ``commits_per_purchase`` says how many fsyncs each
paid. What the figure leaves out: the flow, the HSM and ledger exchanges, the wire.

Best of ``ROUNDS``; each round a fresh journal.
"""

from __future__ import annotations

import resource
import tempfile
from pathlib import Path
from typing import Any, Final

import anyio

from acqkit.datakey import DataKey
from acqkit.groupcommit import GroupCommit
from acqkit.runner import backend_options
from bench.report import emit
from core_ledger.api import LedgerOp, LedgerRequest
from frontend.effects import RecordAnswer, RecordRequest, ReleasePinTry, ReservePinTry
from frontend.journal import Journal
from frontend.journal_ops import JournalCall, journal_call
from wire.masking import mask_pan

PURCHASES: Final = 4_000
IN_FLIGHT: Final = 8
ROUNDS: Final = 3
DAY: Final = "20261204"
PIN_TRIES: Final = 3


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of the process: the commit thread's too
    return usage.ru_utime + usage.ru_stime


def _pan(terminal: int) -> str:
    return f"62258800{terminal:08d}"  # TEST cards, one per terminal


async def _purchase(journal: Journal, writes: GroupCommit[JournalCall, Any], terminal: int, stan: int) -> None:
    pan, terminal_id, stan_text = _pan(terminal), f"{terminal:08d}", f"{stan % 1_000_000:06d}"
    if not journal_call(ReservePinTry(pan, DAY, PIN_TRIES))(journal):
        raise RuntimeError("no PIN try left: the benchmark's cards must not run out")
    template = LedgerRequest(
        op=LedgerOp.PURCHASE,
        acquirer_id="48009999",
        terminal_id=terminal_id,
        merchant_id="898100000000001",
        stan=stan_text,
        local_time="101010",
        local_date="1204",
        transmission="1204101010",
        pan=pan,
        rrn="",
        amount=1_000,
    )
    numbered = await writes.submit(
        journal_call(
            RecordRequest(
                terminal_id=terminal_id,
                batch="000001",
                stan=stan_text,
                mti="0200",
                kind="purchase",
                pan_masked=mask_pan(pan),
                amount=1_000,
                local_date="1204",
                local_time="101010",
                original_stan=None,
                ledger_request=template,
            )
        )
    )
    if numbered is None:
        raise RuntimeError("a duplicate: the benchmark's STANs must not repeat")
    journal_call(ReleasePinTry(pan, DAY))(journal)
    await writes.submit(
        journal_call(
            RecordAnswer(
                terminal_id=terminal_id,
                batch="000001",
                stan=stan_text,
                mti="0200",
                response_code="00",
                auth_code="000001",
                status="approved",
            )
        )
    )


async def _round(folder: Path) -> tuple[float, float]:
    """CPU µs per purchase and commits per purchase, for ``PURCHASES`` purchases on a fresh journal."""
    journal = Journal(folder / "journal.sqlite3", data_key=DataKey.ephemeral())
    writes: GroupCommit[JournalCall, Any] = GroupCommit("bench-journal", journal.run_batch)
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(writes.run_flusher)
            start = _cpu_s()

            async def terminal(number: int) -> None:
                for stan in range(number, PURCHASES, IN_FLIGHT):
                    await _purchase(journal, writes, number, stan)

            async with anyio.create_task_group() as terminals:
                for number in range(IN_FLIGHT):
                    terminals.start_soon(terminal, number)
            used = _cpu_s() - start
            tg.cancel_scope.cancel()
    finally:
        journal.close()
    return used * 1e6 / PURCHASES, writes.batches / PURCHASES


async def measure() -> dict[str, float]:
    best: dict[str, float] = {}
    for _ in range(ROUNDS):
        with tempfile.TemporaryDirectory(prefix="acqsim-bench-journal-") as tmp:
            cpu_us, commits = await _round(Path(tmp))
        if cpu_us < best.get("cpu_us_per_purchase", float("inf")):
            best = {"cpu_us_per_purchase": cpu_us, "commits_per_purchase": commits}
    return best


def main() -> None:
    backend, options = backend_options()
    figures = anyio.run(measure, backend=backend, backend_options=options)
    print(
        f"journal work of a PIN purchase ({IN_FLIGHT} in flight, real SQLite file, synchronous=FULL): "
        f"{figures['cpu_us_per_purchase']:.0f} µs of CPU (all threads), "
        f"{figures['commits_per_purchase']:.2f} commits a purchase"
    )
    emit(figures)


if __name__ == "__main__":
    main()
