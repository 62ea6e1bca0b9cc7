"""The ledger's memory over a long run: every transaction in memory against the recent ones only
(``core_ledger/history.py``, ``--keep-txns``), and what the bound costs a decision.

Each side runs in a process of its own: ``PURCHASES`` purchases decided by :class:`core_ledger.engine.LedgerEngine`
over a real SQLite file, written in group-commit-sized batches of ``BATCH`` as the service writes them, with the
history whole or bounded to ``KEEP``. Figures: the resident memory each side grew by (MB), their ratio, and the µs
a decision (decide + apply) took on each side and their ratio (the bound adds the key filter's probes for every new
key). A serving ledger's default bound is ``RECENT_TXNS_KEPT`` (100,000): this run uses a smaller one so both
sides finish in seconds; the memory held scales with the bound, not with the run.

``python -m bench.bench_ledger_memory``: about 20 s.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Final

from bench.bench_ledger import purchase, seed_bench_card
from bench.report import emit
from core_ledger.engine import LedgerEngine
from core_ledger.sqlite_store import SqliteStore
from core_ledger.store import Posting

PURCHASES: Final = 150_000
KEEP: Final = 20_000
BATCH: Final = 100


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 1e6


def one_side(keep: int | None) -> dict[str, float]:
    """Decide ``PURCHASES`` purchases with the history whole (``None``) or bounded: memory grown, µs a decision."""
    with tempfile.TemporaryDirectory(prefix="acqsim-bench-ledger-memory-") as tmp:
        store = SqliteStore(Path(tmp) / "ledger.sqlite3")
        seed_bench_card(store)
        state = store.load(keep=keep)
        engine, history = LedgerEngine(state), state.txns
        before = _rss_mb()
        batch: list[Posting] = []
        deciding = 0.0
        for number in range(1, PURCHASES + 1):
            request = purchase("10000001", number % 1_000_000, number)
            started = time.perf_counter()
            decision = engine.decide(request)
            history.queued += 1
            engine.commit(decision)
            deciding += time.perf_counter() - started
            batch.append((decision.records, decision.effects))
            if len(batch) == BATCH:
                store.commit(batch)
                history.durable += len(batch)
                batch = []
        grown = _rss_mb() - before
        store.close()
    return {"mb": grown, "decide_us": deciding / PURCHASES * 1e6, "in_memory": history.in_memory}


def measure() -> dict[str, float]:
    sides = {}
    for name, keep in (("whole", "all"), ("bounded", str(KEEP))):
        run = subprocess.run(
            [sys.executable, "-m", "bench.bench_ledger_memory", "--one", keep],
            capture_output=True,
            text=True,
            check=True,
        )
        sides[name] = json.loads(run.stdout.strip().splitlines()[-1])
        print(f"{name}: {sides[name]}", flush=True)
    whole, bounded = sides["whole"], sides["bounded"]
    return {
        "ledger_memory_mb_whole": whole["mb"],
        "ledger_memory_mb_bounded": bounded["mb"],
        "ledger_memory_bounded_to_whole": bounded["mb"] / whole["mb"] if whole["mb"] else 0.0,
        "ledger_decide_us_whole": whole["decide_us"],
        "ledger_decide_us_bounded": bounded["decide_us"],
        "ledger_decide_bounded_to_whole": bounded["decide_us"] / whole["decide_us"] if whole["decide_us"] else 0.0,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_ledger_memory", description=__doc__.split("\n\n")[0])
    parser.add_argument("--one", help="run one side: 'all' (the whole history) or a bound (internal)")
    args = parser.parse_args(argv)
    if args.one is not None:
        print(json.dumps(one_side(None if args.one == "all" else int(args.one))))
        return
    emit(measure())


if __name__ == "__main__":
    main()
