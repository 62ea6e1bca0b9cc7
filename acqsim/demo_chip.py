"""The demo's chip and MPOS steps (issue #18): a contact chip purchase with its ARQC and the issuer's ARPC, a
contactless one, a fallback to the stripe, a card that declines after the host approved (the terminal reverses
at once), an issuer script run (0620 advice), and an MPOS purchase through a DUKPT reader.

``chip_steps`` hands the demo (title, expected response code, action) triples; the demo runs them as its own
steps, so each prints its line and per-hop timeline like the rest of the day.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from acqkit.config import AcqsimConfig
from terminal.chipflow import ReadMode
from terminal.pos import PosTerminal
from terminal.session import Outcome
from wire.masking import mask_pan

#: (title, expected field 39, action)
ChipStep = tuple[str, str, Callable[[], Awaitable[Outcome | None]]]

GOOD_CHIP = "6200001000000003"
SCRIPTED_CHIP = "6200004000000049"
MPOS_TERMINAL = "10000002"
FAILING_CHIP = "6200001000000011"
DECLINING_CHIP = "62000060000000061"


def chip_steps(config: AcqsimConfig, pos: PosTerminal) -> list[ChipStep]:
    good, failing, declining = config.card(GOOD_CHIP), config.card(FAILING_CHIP), config.card(DECLINING_CHIP)
    scripted = config.card(SCRIPTED_CHIP)

    async def contact() -> Outcome | None:
        return await pos.card_financial("purchase", good, mode=ReadMode.CONTACT, amount=3_500, pin=good.pin)

    async def contactless() -> Outcome | None:
        return await pos.card_financial("purchase", good, mode=ReadMode.CONTACTLESS, amount=900)

    async def fallback() -> Outcome | None:
        return await pos.card_financial("purchase", failing, mode=ReadMode.CONTACT, amount=1_200, pin=failing.pin)

    async def card_declines() -> Outcome | None:
        outcome = await pos.card_financial(
            "purchase", declining, mode=ReadMode.CONTACT, amount=2_000, pin=declining.pin
        )
        # The host approved (00); the step ends as expected only if the card then declined and the terminal
        # reversed the approval.
        if outcome is not None and not (outcome.card_declined and pos.session.state.pending_reversal is None):
            return None
        return outcome

    async def script_run() -> Outcome | None:
        outcome = await pos.card_financial("purchase", scripted, mode=ReadMode.CONTACT, amount=500, pin=scripted.pin)
        return outcome if outcome is None or outcome.scripts_ran else None

    async def mpos_purchase() -> Outcome | None:
        # The MPOS terminal: its reader encrypts PIN and track under DUKPT keys; the phone sends only those.
        async with PosTerminal(
            config, MPOS_TERMINAL, nac=pos.nac, state_dir=pos.state_dir, timeout=pos.timeout
        ) as mpos:
            return await mpos.mpos_financial("purchase", good, amount=4_200, pin=good.pin)

    return [
        (f"chip purchase 35.00, card {mask_pan(good.pan)} inserted (22 = 051, ARQC in 55)", "00", contact),
        ("contactless purchase 9.00, no PIN (22 = 072)", "00", contactless),
        (f"card {mask_pan(failing.pan)}: the chip fails, the stripe is read (22 = 801, 60.5 = 2)", "00", fallback),
        (
            f"chip purchase 20.00, card {mask_pan(declining.pan)}: the host approves, the card declines "
            "at its second GENERATE AC, the terminal reverses at once",
            "00",
            card_declines,
        ),
        (
            f"chip purchase 5.00, card {mask_pan(scripted.pan)}: the issuer sends a script (72), the card runs it, "
            "the terminal reports it in a 0620 advice",
            "00",
            script_run,
        ),
        (
            f"MPOS purchase 42.00 at terminal {MPOS_TERMINAL}: the DUKPT reader encrypts PIN and track, the HSM "
            "decrypts the track (M2) and verifies the PIN (GQ)",
            "00",
            mpos_purchase,
        ),
    ]


def chip_detail(outcome: Outcome) -> list[str]:
    """What a step's line adds for a chip transaction: the card's verdict and the issuer authentication."""
    detail = []
    if outcome.issuer_authenticated is not None:
        detail.append("ARPC verified by the card" if outcome.issuer_authenticated else "ARPC FAILED at the card")
    if outcome.card_declined:
        detail.append("the card declined: reversed")
    if outcome.scripts_ran:
        detail.append("issuer scripts run, 0620 advice sent")
    return detail
