"""Scale-out: approved purchases per second with 1 and with 2 front-end processes behind the sticky NAC.

The same run as bench_e2e's keep-alive capacity run (``acqsim up`` as processes, traces off, 32 load
terminals keeping their NAC connection open, each on a card of its own — one shared card would meet the
front-end's PIN-try reservations — purchases offered above capacity for 5 s), once with one
front-end and once with a pool of two (``--frontends 2``: each its own journal and RRN digit, one HSM, one
SQLite ledger), alternated ``ROUNDS`` times so the machine's drift hits both; best of each is compared. CPU µs
per approved purchase by process (both front-ends summed under ``frontend``) says where the time goes. A last
1, 2 pair runs with the ledger on PostgreSQL (the embedded server), as ``acqsim up --ledger-db`` runs it.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any, Final

import anyio

from acqkit.config import AcqsimConfig
from acqkit.runner import backend_options
from acqsim.processes import pipeline_processes
from bench.cpu import cpu_by_service, cpu_per_item
from bench.report import emit
from core_ledger.pgembed import EmbeddedPostgres, EmbeddedPostgresError
from terminal.load.runner import load_cards, run_load, with_load_cards
from terminal.load.schedule import Mix, OpenLoopSchedule

TERMINALS: Final = 32
SECONDS: Final = 5.0
OFFERED_RATE: Final = 4000.0  # above what 2 shared cores do: measures capacity
POOL_SIZES: Final = (1, 2)
ROUNDS: Final = 2


def run_once(
    frontends: int, backend: str, options: dict[str, Any], ledger_db: str | None = None
) -> tuple[float, dict[str, float]]:
    """Approved purchases/s, and CPU µs per approved purchase by process, with ``frontends`` front-ends (and
    the ledger on ``ledger_db``, a PostgreSQL URL, instead of a fresh SQLite file)."""
    cards = load_cards(AcqsimConfig.default(), TERMINALS)
    config = with_load_cards(AcqsimConfig.default(), cards)
    if ledger_db is not None:
        config = dataclasses.replace(config, ledger=dataclasses.replace(config.ledger, db=ledger_db))
    with (
        tempfile.TemporaryDirectory(prefix="acqsim-bench-pool-") as tmp,
        pipeline_processes(config, TERMINALS, Path(tmp), frontends=frontends) as nac,
    ):
        before = cpu_by_service()
        stats, elapsed = anyio.run(
            lambda: run_load(
                config,
                terminals=TERMINALS,
                schedule=OpenLoopSchedule(OFFERED_RATE, SECONDS),
                mix=Mix.parse("purchase=100"),
                against=nac,
                keep_alive=True,
                cards=cards,
                spread="terminal",
            ),
            backend=backend,
            backend_options=options,
        )
        approved = stats.codes.get("00", 0)
        return stats.summary(elapsed)["approved_tps"], cpu_per_item(before, cpu_by_service(), approved)


def main() -> None:
    backend, options = backend_options()
    rates: dict[int, list[float]] = {n: [] for n in POOL_SIZES}
    cpu: dict[int, dict[str, float]] = {}
    for _round in range(ROUNDS):
        for frontends in POOL_SIZES:
            rate, by_process = run_once(frontends, backend, options)
            rates[frontends].append(rate)
            if rate >= max(rates[frontends]):
                cpu[frontends] = by_process
            print(f"{frontends} front-end(s): {rate:,.0f} approved purchases/s", flush=True)
    figures: dict[str, float] = {}
    for frontends in POOL_SIZES:
        best = max(rates[frontends])
        figures[f"frontends_{frontends}_approved_per_s"] = best
        figures[f"frontends_{frontends}_cpu_us_total"] = sum(cpu[frontends].values())
        parts = ", ".join(f"{name} {us:,.0f}" for name, us in sorted(cpu[frontends].items(), key=lambda kv: -kv[1]))
        print(f"best with {frontends}: {best:,.0f}/s; CPU µs per approved purchase: {parts}")
    figures["speedup_2_over_1"] = figures["frontends_2_approved_per_s"] / figures["frontends_1_approved_per_s"]
    print(
        f"2 front-ends / 1: {figures['speedup_2_over_1']:.2f} "
        f"(keep-alive, traces off, {TERMINALS} terminals, offered {OFFERED_RATE:,.0f}/s, best of {ROUNDS})"
    )
    figures |= postgres_round(backend, options)
    emit(figures)


def postgres_round(backend: str, options: dict[str, Any]) -> dict[str, float]:
    """One more 1, 2 alternation with the ledger on PostgreSQL (the embedded server, a fresh database a run)."""
    server = EmbeddedPostgres()
    try:
        server.start()
    except EmbeddedPostgresError as exc:
        print(f"postgresql skipped: {exc}")
        return {}
    figures: dict[str, float] = {}
    try:
        for frontends in POOL_SIZES:
            rate, by_process = run_once(frontends, backend, options, server.fresh_database())
            figures[f"pg_frontends_{frontends}_approved_per_s"] = rate
            figures[f"pg_frontends_{frontends}_cpu_us_total"] = sum(by_process.values())
            print(f"ledger on PostgreSQL, {frontends} front-end(s): {rate:,.0f} approved purchases/s", flush=True)
    finally:
        server.stop()
    return figures


if __name__ == "__main__":
    main()
