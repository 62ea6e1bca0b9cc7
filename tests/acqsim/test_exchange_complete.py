"""A reader of traces waits for every process of an exchange (acqsim.traceview.exchange_complete): each service
writes its records on its own time, so the front-end's answer on disk does not mean the ledger's, the NAC's, the
switch's or an issuer's hop is. The records are shaped as the services write them (service, direction, link, peer)."""

from __future__ import annotations

from typing import Any

import pytest

from acqsim.traceview import exchange_complete


def record(service: str, direction: str, link: str, peer: str) -> dict[str, Any]:
    return {"service": service, "direction": direction, "link": link, "peer": peer}


ON_US = [
    record("nac", "in", "pos", "127.0.0.1:50000"),
    record("nac", "out", "pos", "127.0.0.1:50001"),
    record("frontend", "in", "pos", "nac"),
    record("frontend", "out", "hsm", "hsm"),
    record("frontend", "in", "hsm", "hsm"),
    record("frontend", "out", "host", "ledger"),
    record("ledger", "in", "host", "127.0.0.1:50002"),
    record("ledger", "out", "host", "127.0.0.1:50002"),
    record("frontend", "in", "host", "ledger"),
    record("frontend", "out", "pos", "nac"),
    record("nac", "in", "pos", "127.0.0.1:50001"),
    record("nac", "out", "pos", "127.0.0.1:50000"),
]
OFF_US = [
    *(r for r in ON_US if r["link"] != "host" and r["service"] != "ledger"),
    record("frontend", "out", "switch", "scheme"),
    record("scheme", "in", "switch", "127.0.0.1:50003"),
    record("issuer", "in", "switch", "127.0.0.1:50004"),
    record("issuer", "out", "switch", "127.0.0.1:50004"),
    record("scheme", "out", "switch", "127.0.0.1:50003"),
    record("frontend", "in", "switch", "scheme"),
]


def test_every_process_written_is_complete() -> None:
    assert exchange_complete(ON_US)
    assert exchange_complete(OFF_US, also=("issuer",))


ANSWER = record("frontend", "out", "pos", "nac")
OWED = [i for i, r in enumerate(ON_US) if r["service"] in ("nac", "ledger") or r == ANSWER]


@pytest.mark.parametrize("missing", OWED)
def test_any_record_of_the_nac_or_the_ledger_or_the_answer_missing_is_not(missing: int) -> None:
    assert not exchange_complete(ON_US[:missing] + ON_US[missing + 1 :])


def test_the_nac_half_written_is_not() -> None:
    """The NAC's first two records (the request in and on to the front-end) without the answer's two."""
    nac_seen = [i for i, r in enumerate(ON_US) if r["service"] == "nac"]
    assert not exchange_complete([r for i, r in enumerate(ON_US) if i not in nac_seen[2:]])


def test_the_issuer_behind_the_switch_is_waited_for_only_when_named() -> None:
    without_issuer = [r for r in OFF_US if r["service"] != "issuer"]
    assert exchange_complete(without_issuer)  # a stand-in: the switch answered, no issuer was asked
    assert not exchange_complete(without_issuer, also=("issuer",))
    half_switch = [r for r in OFF_US if not (r["service"] == "scheme" and r["direction"] == "out")]
    assert not exchange_complete(half_switch, also=("issuer",))


def test_the_hsm_is_not_waited_for() -> None:
    """Its records carry neither terminal nor STAN: the front-end's own records show its hops."""
    assert exchange_complete([r for r in ON_US if r["link"] != "hsm"] + [record("frontend", "out", "hsm", "hsm")])
