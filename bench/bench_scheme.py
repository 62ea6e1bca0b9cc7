"""Off-us authorisations per second through the scheme switch, beside the issuer's ledger asked directly, in one
run (docs/benchmarks.md).

The four-party TEST world in-process (acqsim/fourparty.py): an acquirer's test client sends purchases with PIN
on the switch link; each costs the switch's HSM an M8, a CC and an M6, the issuer's HSM an M8, an EC and an M6,
the acquirer's an M6 and an M8 (plus the CA that makes the block), two switch-link hops and one ledger commit at
the issuer. Beside it, the same issuer ledger asked directly over the host link. Read the ratio "switch / ledger":
how much of an off-us authorisation's cost is the four-party path rather than the issuer's decision.
"""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

import anyio

from acqsim.fourparty import ACQUIRER_ID, DEBIT_B, World, running_world
from bench.rates import closed_loop_rate
from bench.report import emit
from core_ledger.api import LedgerOp, LedgerRequest

SECONDS = 2.0
CONCURRENCY = (1, 16)


async def measure(folder: Path) -> dict[str, float]:
    results: dict[str, float] = {}
    numbers = itertools.count(1)
    async with running_world(folder, issuer_timeout=5.0) as world:
        block = await world.pin_block(DEBIT_B)

        async def through_switch() -> None:
            answer = await world.send(world.request(LedgerOp.PURCHASE, DEBIT_B, 1, pin_block=block))
            if answer.fields["39"] != "00":
                raise AssertionError(f"switch answered {answer.fields['39']}")

        async def ledger_alone() -> None:
            n = next(numbers)
            answer = await world.ledger_b.submit(_direct(world, n))
            if not answer.approved:
                raise AssertionError(f"ledger answered {answer.response_code}")

        for name, call in (("switch", through_switch), ("ledger", ledger_alone)):
            for concurrency in CONCURRENCY:
                results[f"{name}_x{concurrency}"] = await closed_loop_rate(concurrency, call, SECONDS)
    return results


def _direct(world: World, n: int) -> LedgerRequest:
    stamp = world.clock
    return LedgerRequest(
        op=LedgerOp.PURCHASE,
        acquirer_id=ACQUIRER_ID,
        terminal_id="10000001",
        merchant_id="898100000000001",
        stan=f"{n % 1_000_000:06d}",
        local_time=f"{stamp:%H%M%S}",
        local_date=f"{stamp:%m%d}",
        transmission=f"{stamp:%m%d%H%M%S}",
        pan=DEBIT_B.pan,
        rrn=f"L{n:011d}",
        amount=1,
    )


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-scheme-") as tmp:
        results = anyio.run(measure, Path(tmp))
    for concurrency in CONCURRENCY:
        switch, ledger = results[f"switch_x{concurrency}"], results[f"ledger_x{concurrency}"]
        print(
            f"x{concurrency:<3} through the switch {switch:>8,.0f}/s   the issuer's ledger alone {ledger:>8,.0f}/s"
            f"   switch / ledger = {switch / ledger:.3f}"
        )
    emit(
        {
            **results,
            **{f"switch_over_ledger_x{c}": results[f"switch_x{c}"] / results[f"ledger_x{c}"] for c in CONCURRENCY},
        }
    )


if __name__ == "__main__":
    main()
