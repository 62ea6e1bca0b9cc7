"""The demo's four-party steps over processes (issue #19), when its configuration has ``[scheme]``: an off-us
purchase with PIN through the switch (the PIN translated CA at the acquirer's HSM, CC at the switch's, verified
EC at issuer B's), then issuer B killed -9 and the switch standing in for it. The supervisor restarts B, and the
switch delivers its stand-in advice to B (0120) on its next store-and-forward pass.

Like ``chip_steps``, ``offus_steps`` hands the demo (title, expected response code, action) — and, fourth, the
services behind the switch whose trace records the step's timeline waits for: the issuer that answered (only the
switch knows it was asked; the demo reads every process's trace, each written on its own time).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Awaitable, Callable

from acqkit.config import AcqsimConfig
from acqsim.fourparty import DEBIT_B, card_fixture
from acqsim.scheme_parties import issuer_pid
from issuer_host.cli import ISSUER_SERVICE_NAME
from terminal.pos import PosTerminal
from terminal.session import Outcome
from wire.masking import mask_pan

OFF_US_AMOUNT = 6_600
STAND_IN_AMOUNT = 8_000
#: (title, expected field 39, action, services behind the switch that trace the step)
OffUsStep = tuple[str, str, Callable[[], Awaitable[Outcome | None]], tuple[str, ...]]


def offus_steps(config: AcqsimConfig, pos: PosTerminal) -> list[OffUsStep]:
    """Nothing without ``[scheme]`` (or without issuers)."""
    if config.scheme is None or not config.scheme.issuers:
        return []
    issuer = config.scheme.issuers[0]
    card = card_fixture(DEBIT_B)

    async def off_us() -> Outcome | None:
        return await pos.financial("purchase", card, amount=OFF_US_AMOUNT, pin=card.pin)

    async def issuer_down() -> Outcome | None:
        pid = issuer_pid(config, issuer)
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
        return await pos.financial("purchase", card, amount=STAND_IN_AMOUNT, pin=card.pin)

    return [
        (
            f"off-us purchase {OFF_US_AMOUNT / 100:.2f}, card {mask_pan(card.pan)} of {issuer.title} through the "
            "scheme switch (PIN: CA at the acquirer's HSM, CC at the switch's, EC at the issuer's)",
            "00",
            off_us,
            (ISSUER_SERVICE_NAME,),
        ),
        (
            f"{issuer.title} killed -9: purchase {STAND_IN_AMOUNT / 100:.2f} stood in by the switch (auth S…); "
            "its advice follows when the supervisor has it back",
            "00",
            issuer_down,
            (),  # the switch stood in: the issuer was down
        ),
    ]
