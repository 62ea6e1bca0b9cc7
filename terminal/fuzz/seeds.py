"""Valid POS-link payloads to mutate, built by the terminal's own message rules (terminal.session).

The working keys are random TEST keys: the host will reject their MACs, which is fine for a fuzzer (a frame
with a good MAC is what the good terminal sends beside it).
"""

from __future__ import annotations

import datetime as dt
import random

from acqkit.config import AcqsimConfig
from terminal.session import Original, TerminalSession
from terminal.state import TerminalState
from wire.constants import NetworkCode

#: Amount of the seed purchases, in minor units (TEST only: the MAC is wrong, nothing posts).
SEED_AMOUNT = 100


def seed_payloads(config: AcqsimConfig, terminal_id: str, rng: random.Random) -> list[bytes]:
    """One payload (no length prefix) of each request kind the terminal sends."""
    fixture = config.terminal(terminal_id)
    card = config.cards[0]
    state = TerminalState(terminal_id=terminal_id, merchant_id=fixture.merchant_id)
    state.signed_on = True
    state.pik_under_tmk = rng.randbytes(16).hex().upper()
    state.mak_under_tmk = rng.randbytes(16).hex().upper()
    session = TerminalSession(
        state,
        bytes.fromhex(fixture.tmk),
        app_type=fixture.app_type,
        route=fixture.route,
        clock=lambda: dt.datetime(2026, 1, 2, 3, 4, 5),  # deterministic from the seed
    )
    original = Original(stan="000001", rrn="000000000001", auth_code="000001")
    payloads = [session.sign_on(), session.network(NetworkCode.ECHO)]
    payloads.append(session.financial("balance", card, pin=card.pin))
    payloads.append(session.financial("purchase", card, amount=SEED_AMOUNT, pin=card.pin))
    payloads.append(session.financial("void", card, amount=SEED_AMOUNT, original=original))
    payloads.append(session.financial("preauth", card, amount=SEED_AMOUNT, pin=card.pin))
    return payloads
