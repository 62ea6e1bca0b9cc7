"""Builders shared by the ledger tests."""

from __future__ import annotations

import datetime as dt
import itertools

import anyio
import anyio.abc

from core_ledger.api import LedgerOp, LedgerRequest, OriginalRef
from core_ledger.engine import LedgerEngine
from core_ledger.seed import CardSeed, MerchantSeed, add_cards, add_merchants, base_state
from core_ledger.server import serve
from core_ledger.service import LedgerFailStop, LedgerService
from core_ledger.state import LedgerState

ACQ = "48009999"
TID = "10000001"
MID = "898100000000001"
GOOD = "6200001000000003"
OTHER = "6200001000000011"
LOW = "6200004000000049"
LOST = "6200003000000033"
STOLEN = "6200005000000053"
EXPIRED = "6200002000000027"
LIMITED = "6200007000000001"
NOW = dt.datetime(2026, 11, 24, 12, 0, 0, tzinfo=dt.UTC)

CARDS = (
    CardSeed(pan=GOOD, expiry="3012", balance=100_000),
    CardSeed(pan=OTHER, expiry="3012", balance=50_000),
    CardSeed(pan=LOW, expiry="3012", balance=1_000),
    CardSeed(pan=LOST, expiry="3012", status="lost", balance=1_000),
    CardSeed(pan=STOLEN, expiry="3012", status="stolen", balance=1_000),
    CardSeed(pan=EXPIRED, expiry="2401", balance=1_000),
    CardSeed(pan=LIMITED, expiry="3012", balance=100_000, daily_limit=5_000),
)

_rrn = itertools.count(1)  # the front-end's transaction ids: never reused, whatever the STAN


def key_of(request: LedgerRequest) -> str:
    """The ledger's transaction key of ``request``: acquirer | RRN."""
    return f"{request.acquirer_id}|{request.rrn}"


def seeded_state() -> LedgerState:
    state = base_state()
    add_merchants(state, [MerchantSeed(merchant_id=MID, name="TEST", fee_bp=50)])
    for txn in add_cards(state, CARDS):
        state.add_txn(txn)
        state.apply(txn.effects)
    return state


def engine(state: LedgerState | None = None) -> LedgerEngine:
    return LedgerEngine(state or seeded_state(), clock=lambda: NOW)


def request(
    op: LedgerOp,
    pan: str = GOOD,
    amount: int = 0,
    *,
    stan: str | None = None,
    original: LedgerRequest | None = None,
    auth_code: str | None = None,
    target_pan: str | None = None,
    rrn: str | None = None,
    by_rrn: bool = True,
) -> LedgerRequest:
    """A request with a fresh STAN and RRN (unless given); ``original`` is named by its RRN (field 56), or
    only by field 90 (an older client) with ``by_rrn=False``."""
    number = next(_rrn)
    stan = stan or f"{number % 1_000_000:06d}"
    ref = None
    if original is not None:
        ref = OriginalRef(
            mti="0200",
            stan=original.stan,
            local_date=original.local_date,
            local_time=original.local_time,
            acquirer_id=original.acquirer_id,
            rrn=original.rrn if by_rrn else "",
        )
    return LedgerRequest(
        op=op,
        acquirer_id=ACQ,
        terminal_id=TID,
        merchant_id=MID,
        stan=stan,
        local_time="120000",
        local_date="1124",
        transmission="1124120000",
        pan=pan,
        rrn=rrn or f"{number:012d}",
        amount=amount,
        original=ref,
        auth_code=auth_code,
        target_pan=target_pan,
    )


class FailStopWatch:
    """Serves ``service`` on a free loopback port until :func:`serve` ends; keeps the ``LedgerFailStop`` it ended
    with (``stopped``) and sets ``ended`` then."""

    def __init__(self, service: LedgerService) -> None:
        self.service = service
        self.stopped: list[LedgerFailStop] = []
        self.ended = anyio.Event()

    async def serve(self, *, task_status: anyio.abc.TaskStatus[int]) -> None:
        try:
            await serve("127.0.0.1", 0, service=self.service, task_status=task_status)
        except LedgerFailStop as exc:
            self.stopped.append(exc)
        finally:
            self.ended.set()
