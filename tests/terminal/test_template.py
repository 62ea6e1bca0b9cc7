"""Templated requests (``terminal/template.py``): byte for byte what a full encode builds, reversal included."""

from __future__ import annotations

import dataclasses
import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from acqkit.config import AcqsimConfig, CardFixture
from terminal.session import MAX_TEMPLATES, TerminalSession
from terminal.state import TerminalState
from terminal.template import RequestTemplate
from wire.codec import decode_pos_body, encode_pos_body
from wire.posframe import PosFrame

CONFIG = AcqsimConfig.default()
TMK = bytes.fromhex(CONFIG.terminals[0].tmk)
PIK_UNDER_TMK = "1A4D672DCA6CB33501E9D8DA9182FC1F"  # PROTOCOL.md §6
MAK_UNDER_TMK = "01E9D8DA9182FC1F1FD1B02B237AF9AE"
#: Kinds a load terminal sends with a card and no original (void/refund name an original: never templated).
TEMPLATED_KINDS = ("purchase", "balance", "preauth", "transfer")


class Clock:
    """A settable clock: each request reads the time the test set."""

    def __init__(self) -> None:
        self.now = dt.datetime(2026, 12, 4, 9, 30)

    def __call__(self) -> dt.datetime:
        return self.now


def session(clock: Clock, *, templates: bool, batch: str = "000001") -> TerminalSession:
    state = TerminalState(
        terminal_id="20000001",
        merchant_id="898100000000001",
        pik_under_tmk=PIK_UNDER_TMK,
        mak_under_tmk=MAK_UNDER_TMK,
        signed_on=True,
        batch=batch,
    )
    return TerminalSession(state, TMK, clock=clock, keep_batch=False, templates=templates)


cards = st.builds(
    lambda card, pan_digits, pin, expiry: dataclasses.replace(card, pan=pan_digits, pin=pin, expiry=expiry),
    st.sampled_from(CONFIG.cards),
    st.text("0123456789", min_size=13, max_size=19),
    st.text("0123456789", min_size=6, max_size=6),
    st.text("0123456789", min_size=4, max_size=4),
)
requests = st.tuples(
    st.sampled_from(TEMPLATED_KINDS),
    st.integers(min_value=0, max_value=999_999),  # STAN before the request
    st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2099, 12, 31)),
    st.integers(min_value=1, max_value=999_999_999_999),  # amount, fen
)


@given(card=cards, batch=st.text("0123456789", min_size=6, max_size=6), sequence=st.lists(requests, max_size=6))
def test_templated_requests_are_byte_identical_to_full_encodes(
    card: CardFixture, batch: str, sequence: list[tuple[str, int, dt.datetime, int]]
) -> None:
    clock = Clock()
    fast, full = session(clock, templates=True, batch=batch), session(clock, templates=False, batch=batch)
    # The first request of each kind makes the template; the sequence then reuses them with any values.
    for kind, stan, now, amount in [(kind, 7, clock.now, 100) for kind in TEMPLATED_KINDS] + sequence:
        fast.state.stan = full.state.stan = stan
        clock.now = now
        templated = fast.financial(kind, card, amount=100, pin=card.pin)
        assert templated == full.financial(kind, card, amount=100, pin=card.pin)
        assert fast.state.pending_reversal == full.state.pending_reversal
        assert fast.state.stan == full.state.stan
        # And a new amount: a template of its own, the same bytes again.
        assert fast.financial(kind, card, amount=amount, pin=card.pin) == full.financial(
            kind, card, amount=amount, pin=card.pin
        )
        assert fast.state.pending_reversal == full.state.pending_reversal


def test_template_patches_stan_time_and_date_and_remacs() -> None:
    clock = Clock()
    pos = session(clock, templates=True)
    card = CONFIG.cards[0]
    pos.financial("purchase", card, amount=100, pin=card.pin)
    clock.now = dt.datetime(2027, 1, 2, 23, 59, 58)
    second = decode_pos_body(PosFrame.parse(pos.financial("purchase", card, amount=100, pin=card.pin)).body)
    assert (second["11"], second["12"], second["13"]) == ("000002", "235958", "0102")
    assert len(pos._templates or {}) == 1  # the second request came from the first one's template


def test_template_cache_is_bounded() -> None:
    pos = session(Clock(), templates=True)
    for amount in range(1, 3 * MAX_TEMPLATES):
        pos.financial("purchase", CONFIG.cards[0], amount=amount, pin=CONFIG.cards[0].pin)
        assert len(pos._templates or {}) <= MAX_TEMPLATES


def test_a_body_without_mac_or_stan_gets_no_template() -> None:
    fields = {"t": "0800", "11": "000001", "12": "093000", "13": "1204", "41": "20000001"}
    assert RequestTemplate.of(fields, encode_pos_body(fields)) is None
    without_stan = {k: v for k, v in fields.items() if k != "11"} | {"64": "00" * 8}
    assert RequestTemplate.of(without_stan, encode_pos_body(without_stan)) is None
