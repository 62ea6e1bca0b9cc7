"""``acqsim demo``: a business day through the whole pipeline, explained hop by hop.

Starts HSM, ledger, front-end and NAC (in this process, on free loopback ports, in a fresh data folder),
puts a loss-injecting relay in front of the NAC (so one answer can be lost on purpose), and walks a day at
terminal 10000001 with the documented test cards. Each step prints one line, then the per-hop timeline read
back from the traces. The day ends with settlement, a receipt and the ledger's balances. Then a smart-POS day
(:mod:`acqsim.demo_smartpos`: the cash register, QR payments and the merchant apps). Exit status 0 only if
every step of both ended as expected.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final

import anyio
import anyio.abc

from acqkit.config import AcqsimConfig, Endpoint
from acqkit.netio import FramedConnection, connect, relay_frames, serve_tcp
from acqsim.demo_chip import chip_detail, chip_steps
from acqsim.demo_offus import offus_steps
from acqsim.demo_smartpos import smartpos_day
from acqsim.pipeline import running_pipeline
from acqsim.processes import RunningServices
from acqsim.traceview import exchange_complete, exchange_records, journey
from core_ledger.setup import open_store
from terminal.pos import PosTerminal
from terminal.receipt import ReceiptData, text_receipt
from terminal.session import Original, Outcome
from wire.constants import RESPONSE_MEANINGS, ResponseCode
from wire.masking import mask_pan

TERMINAL: Final = "10000001"
#: How long the demo terminal waits for an answer (the lost one costs this much).
DEMO_ANSWER_TIMEOUT_S: Final = 1.5
#: How long a step's timeline may wait for its trace records: the front-end writes its traces in batches off
#: the event loop (acqkit/traceflush.py), so its records can reach the file a little after its answer did.
TRACES_WRITTEN_WAIT_S: Final = 2.0
#: How often the trace files are read again while waiting (the front-end's flush interval).
TRACES_REREAD_S: Final = 0.05


class LossyRelay:
    """A length-prefixed relay in front of the NAC that can swallow the next answer (a lost answer)."""

    def __init__(self, upstream: Endpoint) -> None:
        self.upstream = upstream
        self.drop_next_answer = False

    async def handle(self, conn: FramedConnection) -> None:
        upstream = await connect(self.upstream.host, self.upstream.port, timeout=5)
        try:
            await relay_frames(conn, upstream, idle_timeout=30, drop_answer=self._take_drop)
        finally:
            await upstream.aclose()

    def _take_drop(self) -> bool:
        """True once after ``drop_next_answer`` was set: that answer never reaches the terminal."""
        drop, self.drop_next_answer = self.drop_next_answer, False
        return drop


@dataclasses.dataclass(slots=True)
class Step:
    title: str
    expected: str
    outcome: str = ""
    ok: bool = False
    detail: str = ""
    stan: str = ""
    terminal: str = TERMINAL
    started: float = 0.0
    ended: float = 0.0
    #: services beyond the front-end's own peers whose trace records the timeline waits for (an issuer host)
    traced_by: tuple[str, ...] = ()


def _money(minor: int) -> str:
    return f"{minor / 100:,.2f}"


def _load(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def traces_written(trace_dir: Path, step: Step) -> None:
    """Wait until every process of ``step`` has written its records of it (:func:`exchange_complete`: the
    front-end's answer, the NAC's, the ledger's and the switch's hops, and those of ``step.traced_by``), at most
    :data:`TRACES_WRITTEN_WAIT_S`; a step the front-end never answered shows what was written by then."""
    # other processes write the files, each on its own time: read again at the flush interval, up to the deadline
    for _ in range(round(TRACES_WRITTEN_WAIT_S / TRACES_REREAD_S)):
        records = exchange_records(trace_dir, step.terminal, step.stan, since=step.started)
        if exchange_complete(records, also=step.traced_by):
            return
        await anyio.sleep(TRACES_REREAD_S)


def timeline(trace_dir: Path, stan: str, started: float, ended: float, terminal: str = TERMINAL) -> list[str]:
    """The hops of one exchange (a reversal shares its original's STAN: only this exchange's records)."""
    lines = ["    " + line for line in journey(trace_dir, terminal, stan, since=started, until=ended)]
    lines.append(f"    {(ended - started) * 1000:9.2f} ms  terminal ← answer")
    return lines


async def walk_day(
    config: AcqsimConfig, pos: PosTerminal, relay: LossyRelay, report: Callable[[Step], None]
) -> tuple[list[Step], dict[str, Outcome]]:
    good, other = config.card("6200001000000003"), config.card("6200001000000011")
    steps: list[Step] = []
    memory: dict[str, Outcome] = {}

    async def step(
        title: str,
        expected: str,
        action: Callable[[], Awaitable[Outcome | None]],
        key: str | None = None,
        traced_by: tuple[str, ...] = (),
    ) -> Outcome | None:
        record = Step(title, expected, started=time.time(), traced_by=traced_by)
        outcome = await action()
        record.ended = time.time()
        record.stan = f"{pos.session.state.stan:06d}"
        if outcome is None:
            record.outcome = "no answer"
        else:
            record.outcome = outcome.response_code
            record.stan = outcome.fields.get("11", record.stan)
            record.terminal = outcome.fields.get("41", TERMINAL)
            meaning = (
                RESPONSE_MEANINGS.get(ResponseCode(outcome.response_code))
                if outcome.response_code in set(ResponseCode)
                else "?"
            )
            extra = []
            if outcome.fields.get("37"):
                extra.append(f"RRN {outcome.fields['37'].strip()}")
            if outcome.fields.get("38"):
                extra.append(f"auth {outcome.fields['38']}")
            if outcome.fields.get("54"):
                extra.append(f"available {_money(int(outcome.fields['54'][8:]))}")
            extra += chip_detail(outcome)
            record.detail = f"{meaning}" + (f" ({', '.join(extra)})" if extra else "")
            if key:
                memory[key] = outcome
        record.ok = record.outcome == expected
        steps.append(record)
        await traces_written(config.trace_dir, record)
        report(record)
        return outcome

    await step(
        "sign-on 004 (PIK, MAK and track data key under the TMK, KCVs checked): tracks go encrypted under the TDK",
        "00",
        lambda: pos.sign_on(with_tdk=True),
    )
    await step(
        f"balance inquiry, card {mask_pan(good.pan)}", "00", lambda: pos.financial("balance", good, pin=good.pin)
    )
    await step(
        "purchase 128.00", "00", lambda: pos.financial("purchase", good, amount=12_800, pin=good.pin), key="purchase"
    )
    await step(
        "purchase 10.00 with a wrong PIN", "55", lambda: pos.financial("purchase", good, amount=1_000, pin="000000")
    )
    await step(
        "pre-authorisation 500.00 (a hold)",
        "00",
        lambda: pos.financial("preauth", good, amount=50_000, pin=good.pin),
        key="preauth",
    )
    pre = memory.get("preauth")
    await step(
        "pre-auth completion 480.00",
        "00",
        lambda: pos.financial(
            "preauth_completion",
            good,
            amount=48_000,
            pin=good.pin,
            original=Original(stan=pre.fields["11"], auth_code=pre.fields.get("38", "")) if pre else None,
        ),
    )
    buy = memory.get("purchase")
    await step(
        "void of the 128.00 purchase",
        "00",
        lambda: pos.financial(
            "void",
            good,
            amount=12_800,
            original=Original(stan=buy.fields["11"], rrn=buy.fields.get("37", "")) if buy else None,
        ),
    )
    await step(
        "purchase 66.00", "00", lambda: pos.financial("purchase", good, amount=6_600, pin=good.pin), key="purchase2"
    )
    buy2 = memory.get("purchase2")
    await step(
        "refund 20.00 of it (partial)",
        "00",
        lambda: pos.financial(
            "refund",
            good,
            amount=2_000,
            original=Original(
                stan=buy2.fields["11"], rrn=buy2.fields.get("37", ""), local_date=buy2.fields.get("13", "")
            )
            if buy2
            else None,
        ),
    )
    await step(
        f"transfer 50.00 to {mask_pan(other.pan)}",
        "00",
        lambda: pos.financial("transfer", good, amount=5_000, pin=good.pin, target_pan=other.pan),
    )

    async def lost() -> Outcome | None:
        relay.drop_next_answer = True
        return await pos.financial("purchase", good, amount=8_800, pin=good.pin)

    await step("purchase 88.00 whose answer is lost (reversal stored before sending)", "no answer", lost)

    async def echo_after_reversal() -> Outcome | None:
        reversal = await pos.send_pending_reversal()
        return reversal

    await step("automatic reversal of the lost purchase, sent before anything else", "00", echo_after_reversal)

    for title, expected, action in chip_steps(config, pos):
        await step(title, expected, action)

    async def settle() -> Outcome | None:
        outcome, _ = await pos.settle()
        return outcome

    await step("settlement (totals compared with the host's journal)", "00", settle, key="settlement")
    settled = memory.get("settlement")
    if settled is not None and settled.fields.get("48", "")[30:31] != "1":
        steps[-1].ok = False
        steps[-1].detail += " — not balanced"
    elif settled is not None:
        steps[-1].detail += " — balanced"
    for title, expected, action, traced_by in offus_steps(config, pos):  # with [scheme]: after the batch is settled
        await step(title, expected, action, traced_by=traced_by)
    return steps, memory


def print_balances(config: AcqsimConfig, write: Callable[[str], None]) -> None:
    store = open_store(config.store_path(config.ledger.db))
    try:
        state = store.load()
    finally:
        store.close()
    write("Ledger balances after the day:")
    for card in config.cards[:2]:
        account = state.accounts[state.cards[card.pan].account_id]
        write(
            f"  card {mask_pan(card.pan)}  balance {_money(account.balance):>14}  "
            f"available {_money(account.available):>14}"
        )
    for account in state.accounts.values():
        if account.kind.value in ("clearing", "merchant", "fee_income") and account.balance:
            write(f"  {account.name[:28]:<28} {_money(account.balance):>14}")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class _Target:
    nac: Endpoint
    where: str
    wallet: Endpoint
    #: ``None``: the smart-POS day starts a merchant platform in this process.
    merchant_platform: Endpoint | None


@asynccontextmanager
async def _pipeline(config: AcqsimConfig, services: RunningServices | None) -> AsyncIterator[_Target]:
    """The services to use: the given ones (running as processes) or an in-process pipeline."""
    if services is not None:
        yield _Target(
            nac=services.nac,
            where=(
                f"services running as separate processes; NAC {services.nac}  wallet {services.wallet}"
                f"  merchant platform {services.merchant_platform}"
            ),
            wallet=services.wallet,
            merchant_platform=services.merchant_platform,
        )
        return
    async with running_pipeline(config, trace=True) as pipeline:
        yield _Target(
            nac=pipeline.nac,
            where=f"HSM {pipeline.hsm}  ledger {pipeline.ledger}  front-end {pipeline.frontend}  NAC {pipeline.nac}",
            wallet=pipeline.wallet,
            merchant_platform=None,
        )


async def run_demo(
    config: AcqsimConfig,
    write: Callable[[str], None],
    *,
    services: RunningServices | None = None,
    client_tls: ssl.SSLContext | None = None,
) -> bool:
    """Walk the day; ``services`` given: against services already running (``acqsim up``) with this data
    folder, dialling the wallet host and the merchant platform with ``client_tls`` when they serve TLS."""
    write(f"acqsim demo — data in {config.data_dir}")
    async with _pipeline(config, services) as target:
        relay = LossyRelay(target.nac)
        async with anyio.create_task_group() as tg:
            relay_port = await tg.start(functools.partial(serve_tcp, "127.0.0.1", 0, relay.handle, name="relay"))
            write(target.where)
            write("")

            def report(step: Step) -> None:
                mark = "ok  " if step.ok else "FAIL"
                write(f"[{mark}] {step.title}: {step.outcome} {step.detail}".rstrip())
                for line in timeline(config.trace_dir, step.stan, step.started, step.ended, step.terminal):
                    write(line)

            async with PosTerminal(
                config, TERMINAL, nac=Endpoint(host="127.0.0.1", port=relay_port), timeout=DEMO_ANSWER_TIMEOUT_S
            ) as pos:
                steps, memory = await walk_day(config, pos, relay, report)
            tg.cancel_scope.cancel()
        card_day = _finish(config, write, steps, memory)
        smart_day = await smartpos_day(
            config,
            write,
            nac=target.nac,
            wallet=target.wallet,
            platform=target.merchant_platform,
            client_tls=client_tls,
        )
    return card_day and smart_day


def _finish(config: AcqsimConfig, write: Callable[[str], None], steps: list[Step], memory: dict[str, Outcome]) -> bool:
    buy2 = memory.get("purchase2")
    if buy2 is not None:
        fixture = config.terminal(TERMINAL)
        merchant = config.merchant(fixture.merchant_id)
        write("")
        write(
            text_receipt(
                ReceiptData(
                    merchant_name=merchant.name,
                    merchant_id=merchant.merchant_id,
                    terminal_id=TERMINAL,
                    operator="001",
                    pan=buy2.fields.get("2", ""),
                    kind="purchase",
                    batch=buy2.fields.get("60", "00000001")[2:8],
                    stan=buy2.fields["11"],
                    rrn=buy2.fields.get("37", ""),
                    auth_code=buy2.fields.get("38", ""),
                    date=buy2.fields.get("13", ""),
                    time=buy2.fields.get("12", ""),
                    amount=int(buy2.fields.get("4", "0")),
                )
            )
        )
    write("")
    print_balances(config, write)
    failed = [s for s in steps if not s.ok]
    write("")
    write(
        f"{len(steps) - len(failed)} of {len(steps)} steps ended as expected"
        + ("" if not failed else "; failed: " + ", ".join(s.title for s in failed))
    )
    return not failed
