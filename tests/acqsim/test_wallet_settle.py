"""``acqsim wallet settle`` over real loopback TCP (the wallet host) and a real SQLite ledger: the takings of each
merchant posted once, net of refunds and the fee; a second run posts nothing; and a settle process killed -9
between the ledger's commit and the wallet's mark is finished by the rerun without posting twice."""

from __future__ import annotations

import csv
import dataclasses
import functools
import json
import os
import signal
import sys
from pathlib import Path

import anyio
import pytest
from anyio.streams.text import TextReceiveStream

from acqkit.config import AcqsimConfig, config_to_toml
from acqkit.netio import FramedConnection, connect, serve_tcp
from acqsim.reconcile_walletsettle import reconcile_wallet_settlement
from acqsim.wallet_settle import settle_wallet
from core_ledger.check import check_store
from core_ledger.model import Txn
from core_ledger.setup import open_service, open_store
from core_ledger.walletsettle import wallet_account
from tests.wallet.helpers import Clock
from wallet.client import WalletClient
from wallet.model import BatchState
from wallet.seed import DEFAULT_ACCOUNT
from wallet.server import WalletHost, serve
from wallet.settlement import business_date
from wallet.store import WalletStore
from wire.tlvlink import LinkMessage
from wire.walletlink import Kind

pytestmark = pytest.mark.anyio
HOST = "127.0.0.1"
STEP_S = 30.0
DIRECT = "898100000000001"  # 一清: paid to its own account
SECONDARY = "898100000000002"  # 二清: paid to its aggregator's account


async def _pay(client: WalletClient, merchant: str, stan: int, amount: int) -> str:
    code = (await client.request(LinkMessage.of(Kind.CODE, CA=DEFAULT_ACCOUNT)))["A3"]
    pay = LinkMessage.of(Kind.PAY, TI="10000001", MI=merchant, ST=f"{stan:06d}", DT="0115", AM=amount, A3=code)
    answer = await client.request(pay)
    assert answer.result == "00"
    return answer["A4"]


async def _day_of_payments(client: WalletClient) -> None:
    """Direct merchant: 100.00 + 50.00, 20.00 of it refunded; secondary merchant: 33.33."""
    await _pay(client, DIRECT, 1, 10_000)
    voucher = await _pay(client, DIRECT, 2, 5_000)
    refund = LinkMessage.of(Kind.REFUND, TI="10000001", MI=DIRECT, ST="000003", DT="0115", A4=voucher, AM=2_000)
    assert (await client.request(refund)).result == "00"
    await _pay(client, SECONDARY, 4, 3_333)


def _ledger(tmp_path: Path) -> tuple[str, dict[str, str]]:
    """A seeded ledger store; the merchants' payee accounts."""
    config = AcqsimConfig.default(data_dir=tmp_path)
    service = open_service(str(tmp_path / "ledger.sqlite3"), config)
    merchants = service.state.merchants
    payees = {
        mid: (m.aggregator_account_id if m.settlement == "secondary" and m.aggregator_account_id else m.account_id)
        for mid, m in merchants.items()
    }
    service.store.close()
    return str(tmp_path / "ledger.sqlite3"), payees


def _config(tmp_path: Path) -> Path:
    """A configuration file whose data directory is the test's (the command needs no other setting)."""
    path = tmp_path / "acqsim.toml"
    path.write_text(config_to_toml(AcqsimConfig.default(data_dir=tmp_path)), encoding="utf-8")
    return path


def _txns(db: str) -> list[Txn]:
    store = open_store(db)
    try:
        return list(store.load().txns.values())
    finally:
        store.close()


def _balances(db: str) -> dict[str, int]:
    store = open_store(db)
    try:
        return {a.account_id: a.balance for a in store.load().accounts.values()}
    finally:
        store.close()


async def test_settle_posts_each_merchants_takings_once_and_a_second_run_posts_nothing(tmp_path: Path) -> None:
    db, payees = _ledger(tmp_path)
    before = _balances(db)
    clock = Clock()
    day = business_date(clock())
    wallet = WalletHost(WalletStore(tmp_path / "wallet.sqlite3"), clock=clock)
    with anyio.fail_after(STEP_S):
        async with anyio.create_task_group() as tg:
            port = await tg.start(functools.partial(serve, HOST, 0, wallet=wallet))
            async with WalletClient(HOST, port) as client:
                await _day_of_payments(client)
                store = open_store(db)
                try:
                    first = await settle_wallet(client, store, day, fee_bp=55)
                    second = await settle_wallet(client, store, day, fee_bp=55)
                finally:
                    store.close()
            # The command as a user runs it: nothing more to post, the report names every batch of the date.
            argv = [sys.executable, "-m", "acqsim", "wallet", "settle", "--date", day, "--ledger", db, "--json"]
            argv += [
                "--wallet",
                f"{HOST}:{port}",
                "--out",
                str(tmp_path / "qr.csv"),
                "--config",
                str(_config(tmp_path)),
            ]
            third = await anyio.run_process(argv, check=False)
            tg.cancel_scope.cancel()
    wallet.wallet_store.close()

    assert third.returncode == 0, third.stderr
    printed = json.loads(third.stdout)
    assert printed["posted"] == [] and len(printed["settled_before"]) == 2
    rows = list(csv.DictReader((tmp_path / "qr.csv").read_text(encoding="utf-8").splitlines()))
    assert {(r["merchant_id"], r["net_amount"], r["fee_amount"], r["payout_amount"], r["this_run"]) for r in rows} == {
        (DIRECT, "13000", "72", "12928", "settled before"),
        (SECONDARY, "3333", "18", "3315", "settled before"),
    }
    assert {(p.batch.merchant_id, p.batch.amount, p.fee) for p in first.posted} == {
        (DIRECT, 13_000, 72),  # 130.00 × 0.55 % = 0.715 → 0.72 (half up)
        (SECONDARY, 3_333, 18),  # 33.33 × 0.55 % = 0.183 → 0.18
    }
    assert second.nothing_posted and len(second.settled_before) == 2 and not second.finished
    after = _balances(db)
    assert after[payees[DIRECT]] - before[payees[DIRECT]] == 13_000 - 72
    assert after[payees[SECONDARY]] - before[payees[SECONDARY]] == 3_333 - 18
    assert after[wallet_account("unionpay")] == -(13_000 + 3_333)  # what the wallet owes the acquirer
    assert after["ACQ-FEES"] - before["ACQ-FEES"] == 72 + 18
    store = open_store(db)
    try:
        assert check_store(store) == []
    finally:
        store.close()
    book = WalletStore(tmp_path / "wallet.sqlite3").load()
    assert {b.state for b in book.batches.values()} == {BatchState.SETTLED}
    assert reconcile_wallet_settlement(book, _txns(db)) == (2, 0, ())
    # A batch whose amount the ledger does not hold, and a posting without its batch, are differences.
    [direct] = [b for b in book.batches.values() if b.merchant_id == DIRECT]
    book.batches[direct.key] = dataclasses.replace(direct, amount=direct.amount + 1)
    book.batches.pop(next(k for k in book.batches if k != direct.key))
    matched, _, found = reconcile_wallet_settlement(book, _txns(db))
    assert matched == 0
    assert sorted(d.problem for d in found) == ["amounts differ", "posted at the ledger, no batch at the wallet"]


async def test_a_settle_killed_between_the_ledgers_commit_and_the_wallets_mark_is_finished_by_the_rerun(
    tmp_path: Path,
) -> None:
    db, payees = _ledger(tmp_path)
    before = _balances(db)
    clock = Clock()
    day = business_date(clock())
    wallet = WalletHost(WalletStore(tmp_path / "wallet.sqlite3"), clock=clock)
    mark_held = anyio.Event()

    async def proxy(conn: FramedConnection, *, upstream: int) -> None:
        """Forwards the settle process's requests; the first mark (sent only after the ledger's commit) is
        held, never forwarded: the process is killed while it waits."""
        host = await connect(HOST, upstream, timeout=STEP_S)
        try:
            while (payload := await conn.receive(STEP_S)) is not None:
                if payload.startswith(b"MT004" + Kind.SETTLE_MARK.encode()):
                    mark_held.set()
                    await anyio.sleep_forever()
                await host.send(payload)
                answer = await host.receive(STEP_S)
                if answer is None:
                    return
                await conn.send(answer)
        finally:
            await host.aclose()

    with anyio.fail_after(STEP_S * 2):
        async with anyio.create_task_group() as tg:
            port = await tg.start(functools.partial(serve, HOST, 0, wallet=wallet))
            relay = await tg.start(
                functools.partial(serve_tcp, HOST, 0, functools.partial(proxy, upstream=port), name="proxy")
            )
            async with WalletClient(HOST, port) as client:
                await _day_of_payments(client)
            argv = [sys.executable, "-m", "acqsim", "wallet", "settle", "--date", day, "--ledger", db]
            argv += ["--wallet", f"{HOST}:{relay}", "--config", str(_config(tmp_path))]
            process = await anyio.open_process(argv, env={**os.environ, "PYTHONUNBUFFERED": "1"})
            try:
                async with anyio.create_task_group() as watch:

                    async def drain() -> None:
                        assert process.stderr is not None
                        async for _ in TextReceiveStream(process.stderr):
                            pass

                    watch.start_soon(drain)
                    await mark_held.wait()
                    process.send_signal(signal.SIGKILL)  # kill -9: posted in the ledger, not marked at the wallet
                    assert await process.wait() == -signal.SIGKILL
            finally:
                await process.aclose()
            posted_once = _balances(db)
            assert posted_once[payees[DIRECT]] - before[payees[DIRECT]] == 13_000
            assert {b.state for b in wallet.wallet_core.book.batches.values()} == {BatchState.OPEN}
            matched, _, found = reconcile_wallet_settlement(wallet.wallet_core.book, _txns(db))
            assert matched == 0 and [d.problem.split(",")[0] for d in found] == ["posted"] * 2

            async with WalletClient(HOST, port) as client:
                store = open_store(db)
                try:
                    rerun = await settle_wallet(client, store, day, fee_bp=0)
                finally:
                    store.close()
            tg.cancel_scope.cancel()
    wallet.wallet_store.close()

    assert rerun.nothing_posted
    assert {(p.batch.merchant_id, p.batch.amount) for p in rerun.finished} == {(DIRECT, 13_000), (SECONDARY, 3_333)}
    assert _balances(db) == posted_once  # nothing posted twice
    store = open_store(db)
    try:
        assert check_store(store) == []
    finally:
        store.close()
    book = WalletStore(tmp_path / "wallet.sqlite3").load()
    assert {b.state for b in book.batches.values()} == {BatchState.SETTLED}
    assert reconcile_wallet_settlement(book, _txns(db)) == (2, 0, ())
