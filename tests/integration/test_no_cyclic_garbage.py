"""Purchases through every service (NAC, front-end, HSM, ledger, in one process on the callback path, real TCP on
loopback) leave nothing for CPython's cyclic collector: each purchase's state is freed by refcounting as soon as
it ends. When the link's exchanges and the front-end's closures pointed at each other, every purchase left ~100
objects in cycles, and collecting them took ~10 % of the front-end's CPU under load (docs/benchmarks.md,
"session 13"); a connection per transaction left ten more at the NAC."""

from __future__ import annotations

import gc
from collections import Counter
from pathlib import Path

import pytest

from acqkit.config import AcqsimConfig
from acqkit.netio import connect
from acqsim.pipeline import running_pipeline
from terminal.session import TerminalSession
from terminal.state import TerminalState

pytestmark = pytest.mark.anyio
ANSWER_TIMEOUT_S = 10.0
#: Purchases counted, each way (kept-open connection, a connection each).
PURCHASES = 20


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, bool]]:
    return ("asyncio", {"use_uvloop": True})  # as the services run


async def test_purchases_through_every_service_leave_no_cyclic_garbage(tmp_path: Path) -> None:
    config = AcqsimConfig.default(data_dir=tmp_path)
    fixture, card = config.terminals[0], config.cards[0]
    state = TerminalState(terminal_id=fixture.terminal_id, merchant_id=fixture.merchant_id)
    terminal = TerminalSession(state, bytes.fromhex(fixture.tmk))
    async with running_pipeline(config) as pipeline:

        async def purchase_on(conn_kept: bool) -> bool:
            conn = kept if conn_kept else await connect(pipeline.nac.host, pipeline.nac.port, timeout=5)
            try:
                await conn.send(terminal.financial("purchase", card, amount=100, pin=card.pin))
                answer = await conn.receive(ANSWER_TIMEOUT_S)
                assert answer is not None
                return terminal.receive("purchase", answer).approved
            finally:
                if not conn_kept:
                    await conn.aclose()

        kept = await connect(pipeline.nac.host, pipeline.nac.port, timeout=5)
        try:
            await kept.send(terminal.sign_on())
            answer = await kept.receive(ANSWER_TIMEOUT_S)
            assert answer is not None and terminal.receive("sign_on", answer).approved
            for conn_kept in (True, False):  # warm: sessions, caches and links made once
                assert await purchase_on(conn_kept)
            gc.collect()
            gc.set_debug(gc.DEBUG_SAVEALL)  # what a pass finds unreachable is kept in gc.garbage, to be named
            try:
                approved = [await purchase_on(conn_kept) for conn_kept in (True, False) for _ in range(PURCHASES)]
                gc.collect()
                left = Counter(type(thing).__qualname__ for thing in gc.garbage)
            finally:
                gc.set_debug(0)
                gc.garbage.clear()
        finally:
            await kept.aclose()
    assert all(approved) and len(approved) == 2 * PURCHASES
    assert not left, f"objects only the cyclic collector frees: {left.most_common(10)}"
