"""kill -9 of the front-end after the ledger posted a purchase but before the answer was journaled: the
restarted front-end reverses the row before it takes traffic, so the money moves back and nothing is doubled.

The front-end runs as a real process (``python -m acqsim frontend``); the HSM and the ledger run here, and a
proxy between the front-end and the ledger holds the ledger's answer back (it has posted by then) until the
front-end is killed.
"""

from __future__ import annotations

import functools
import os
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest
from anyio.streams.text import TextReceiveStream

from acqkit.config import AcqsimConfig, Endpoint, config_to_toml
from acqkit.keystore import write_key_store
from acqkit.netio import FramedConnection, connect, serve_tcp
from core_ledger.server import serve as serve_ledger
from core_ledger.setup import open_service
from hsm_sim.keys import DEFAULT_TEST_LMK
from hsm_sim.server import serve as serve_hsm
from terminal.pos import PosTerminal
from tests.keyring import key_store_for

pytestmark = pytest.mark.anyio
HOST = "127.0.0.1"
START_TIMEOUT_S = 30.0
PAN = "6200001000000003"


@asynccontextmanager
async def frontend_process(
    config_file: Path, hsm: int, ledger: int, journal: Path
) -> AsyncIterator[tuple[anyio.abc.Process, int]]:
    argv = [sys.executable, "-m", "acqsim", "frontend", "--config", str(config_file), "--host", HOST, "--port", "0"]
    argv += ["--hsm", f"{HOST}:{hsm}", "--ledger", f"{HOST}:{ledger}", "--db", str(journal)]
    process = await anyio.open_process(argv, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert process.stdout is not None
        seen = ""
        with anyio.fail_after(START_TIMEOUT_S):
            async for chunk in TextReceiveStream(process.stdout):
                seen += chunk
                ready = [line for line in seen.splitlines() if line.startswith("READY frontend")]
                if ready:
                    port = int(ready[0].rsplit(":", 1)[1])
                    break
            else:
                raise AssertionError(f"the front-end exited before READY: {seen!r}")
        yield process, port
    finally:
        if process.returncode is None:
            process.kill()
        with anyio.move_on_after(5, shield=True):
            await process.wait()
        await process.aclose()


def balance(service: object) -> int:
    state = service.state  # type: ignore[attr-defined]
    return int(state.accounts[state.cards[PAN].account_id].balance)


def journal_rows(path: Path) -> list[tuple[str, str, str | None]]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return db.execute("SELECT kind, status, pending_request FROM txns ORDER BY created_at").fetchall()


async def test_a_frontend_killed_between_posting_and_journaling_reverses_on_restart(tmp_path: Path) -> None:
    config = AcqsimConfig.default(data_dir=tmp_path)
    config_file = tmp_path / "acqsim.toml"
    config_file.write_text(config_to_toml(config), encoding="utf-8")
    write_key_store(config.key_store_path, key_store_for(config))  # as the key ceremony leaves it
    journal = tmp_path / "journal.sqlite3"
    card = config.card(PAN)
    posted = anyio.Event()
    hold_answers = True

    async def ledger_proxy(conn: FramedConnection, *, upstream: int) -> None:
        """Forwards requests; while ``hold_answers``, the ledger's answer is kept (it has posted) and never sent."""
        ledger = await connect(HOST, upstream, timeout=5)
        try:
            while (payload := await conn.receive(60)) is not None:
                await ledger.send(payload)
                answer = await ledger.receive(30)
                if answer is None:
                    return
                if hold_answers and payload[:4] == b"0200":
                    posted.set()
                    await anyio.sleep_forever()
                await conn.send(answer)
        finally:
            await ledger.aclose()

    async with anyio.create_task_group() as tg:
        hsm = await tg.start(functools.partial(serve_hsm, HOST, 0, lmk=DEFAULT_TEST_LMK))
        service = open_service(config.store_path(config.ledger.db), config)
        ledger = await tg.start(functools.partial(serve_ledger, HOST, 0, service=service))
        proxy = await tg.start(
            functools.partial(serve_tcp, HOST, 0, functools.partial(ledger_proxy, upstream=ledger), name="proxy")
        )
        before = balance(service)

        async with frontend_process(config_file, hsm, proxy, journal) as (process, port):
            async with PosTerminal(config, "10000001", nac=Endpoint(host=HOST, port=port), timeout=30) as pos:
                assert (await pos.sign_on()) is not None
                async with anyio.create_task_group() as buying:
                    buy = functools.partial(pos.financial, "purchase", card, amount=2_500, pin=card.pin)
                    buying.start_soon(buy)
                    with anyio.fail_after(START_TIMEOUT_S):
                        await posted.wait()
                    assert balance(service) == before - 2_500  # the ledger posted it
                    process.send_signal(signal.SIGKILL)  # kill -9 before the answer is journaled
            assert journal_rows(journal)[-1][:2] == ("purchase", "pending")

        hold_answers = False
        async with frontend_process(config_file, hsm, proxy, journal) as (process, port):
            # READY comes only after recovery: the purchase is already reversed at the ledger.
            assert balance(service) == before
            assert journal_rows(journal)[-1] == ("purchase", "reversed", None)
            async with PosTerminal(config, "10000001", nac=Endpoint(host=HOST, port=port), timeout=10) as pos:
                again = await pos.financial("purchase", card, amount=1_000, pin=card.pin)
                assert again is not None and again.approved  # and it serves as before
            assert balance(service) == before - 1_000
        tg.cancel_scope.cancel()
    service.store.close()


async def test_recovery_asks_a_silent_ledger_once_then_queues_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows left pending by a crash under load, and a ledger that accepts but never answers: start-up must not
    wait on it row by row; the first row's try times out, every row goes to the queue, journaled reversed."""
    import frontend.recovery
    from acqkit.groupcommit import GroupCommit
    from core_ledger.client import LedgerClient
    from frontend.journal import Journal
    from frontend.recovery import settle_unsettled
    from tests.frontend.test_journal import _request

    monkeypatch.setattr(frontend.recovery, "RECOVERY_TRY_TIMEOUT_S", 0.3)
    journal = Journal(tmp_path / "journal.sqlite3")
    journal.run_batch([functools.partial(_request, stan=stan) for stan in ("000001", "000002", "000003")])
    asked: list[bytes] = []

    async def silent(conn: FramedConnection) -> None:
        while (payload := await conn.receive(30)) is not None:
            asked.append(payload)  # and never answered

    async with anyio.create_task_group() as tg:
        port = await tg.start(functools.partial(serve_tcp, HOST, 0, silent, name="silent ledger"))
        ledger = LedgerClient(HOST, port, timeout=10.0)
        writes: GroupCommit[Any, Any] = GroupCommit("journal", journal.run_batch)
        await tg.start(writes.run_flusher)
        report = await settle_unsettled(journal, writes, ledger)
        await ledger.aclose()
        tg.cancel_scope.cancel()
    assert (report.reversed_at_ledger, report.queued) == (0, 3)
    assert len(asked) == 1  # asked once, not once per row
    assert journal.unsettled() == [] and len(journal.pending_reversals()) == 3
    journal.close()
