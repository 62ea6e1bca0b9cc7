"""``acqsim ledger serve`` as a real process: a failed commit ends it with ``EXIT_FAIL_STOP`` (issue #14.6).

The store is the embedded PostgreSQL server, whose ledger session the test terminates from outside: the next
commit fails, its caller gets 96, and the process exits 74 by itself, so that a supervisor restarts it.
"""

from __future__ import annotations

import sys

import anyio
import psycopg
import pytest

from acqkit.exitcodes import EXIT_FAIL_STOP
from core_ledger.api import LedgerOp
from core_ledger.client import LedgerClient
from core_ledger.pgembed import EmbeddedPostgres
from core_ledger.postgres_store import PostgresStore
from tests.core_ledger.helpers import GOOD, request
from wire.constants import ResponseCode

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

#: Time for the process to start (Python imports, schema, seeding) and to end after its fail-stop.
PROCESS_TIMEOUT_S = 30


def _terminate_sessions(url: str) -> None:
    """The database goes away under the running ledger: every other session on it is terminated."""
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


async def test_serve_exits_with_fail_stop_code_after_a_failed_commit(postgres_server: EmbeddedPostgres) -> None:
    url = postgres_server.fresh_database()
    argv = [sys.executable, "-m", "acqsim", "ledger", "serve", "--db", url, "--host", "127.0.0.1", "--port", "0"]
    process = await anyio.open_process(argv)
    try:
        assert process.stdout is not None and process.stderr is not None
        output = b""
        with anyio.fail_after(PROCESS_TIMEOUT_S):
            while b"READY" not in output:
                output += await process.stdout.receive()
        port = int(output.decode().split("READY ledger 127.0.0.1:")[1].split()[0])
        async with await LedgerClient.connect("127.0.0.1", port) as client:
            first = await client.submit(request(LedgerOp.PURCHASE, GOOD, 100))  # GOOD is a demo card
            assert first.response_code is ResponseCode.APPROVED
            await anyio.to_thread.run_sync(_terminate_sessions, url)
            lost = await client.submit(request(LedgerOp.PURCHASE, GOOD, 200))
            assert lost.response_code is ResponseCode.SYSTEM_MALFUNCTION
        with anyio.fail_after(PROCESS_TIMEOUT_S):
            code = await process.wait()
            errors = b""
            async for chunk in process.stderr:
                errors += chunk
        assert code == EXIT_FAIL_STOP
        assert b"fail-stop" in errors and b"restart" in errors
    finally:
        if process.returncode is None:
            process.terminate()
            with anyio.fail_after(10):
                await process.wait()
        await process.aclose()

    # What the restarted ledger would load: the first purchase only.
    store = PostgresStore(url)
    try:
        state = store.load()
        purchases = [txn.amount for txn in state.txns.values() if txn.op is LedgerOp.PURCHASE]
        assert purchases == [100]
        assert state.accounts[state.cards[GOOD].account_id].balance == first.balance
    finally:
        store.close()
