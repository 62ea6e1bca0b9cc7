"""The transaction lifecycle table: every listed transition, and everything else refused."""

from __future__ import annotations

import itertools

import pytest

from frontend.lifecycle import TRANSITIONS, IllegalTransition, TxnEvent, TxnState, advance, can


@pytest.mark.parametrize(("state", "event"), list(itertools.product(TxnState, TxnEvent)))
def test_every_pair_is_in_the_table_or_refused(state: TxnState, event: TxnEvent) -> None:
    if (state, event) in TRANSITIONS:
        assert advance(state, event) is TRANSITIONS[(state, event)] and can(state, event)
    else:
        assert not can(state, event)
        with pytest.raises(IllegalTransition):
            advance(state, event)


def test_a_voided_purchase_cannot_be_reversed_or_voided_again() -> None:
    assert advance(TxnState.APPROVED, TxnEvent.VOIDED) is TxnState.VOIDED
    assert not can(TxnState.VOIDED, TxnEvent.REVERSED) and not can(TxnState.VOIDED, TxnEvent.VOIDED)
    assert not can("no such state", TxnEvent.REVERSED)
