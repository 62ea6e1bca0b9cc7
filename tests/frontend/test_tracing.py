"""What the front-end's trace shows of its HSM calls (``frontend/tracing.py``): each part of an effect on the way
out (the command code only) and its answer on the way in (a note saying what the result was),
read back from the trace file as every reader reads it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from frontend.effects import FailureKind, GenerateMac, PeerFailure, VerifyMac, VerifyMacAndPin, VerifyPin
from frontend.tracing import EffectTrace
from hsm_sim.client import PinVerification
from wire.trace import TraceWriter, read_trace

_KEY = "U" + "0" * 32  # TEST: a placeholder key under the LMK, never sent anywhere
_CORRELATION = "T20000001-000001-1204"


def _pin(ksn: bytes | None = None) -> VerifyPin:
    return VerifyPin(
        tpk_under_lmk=_KEY,
        pvk_under_lmk=_KEY,
        pin_block=bytes(8),
        pan="6200001000000003",
        pvki="1",
        pvv="0000",
        ksn=ksn,
    )


def _shown(path: Path) -> list[tuple[Any, ...]]:
    return [
        (r["direction"], r["link"], r["peer"], r["message"]["code"], r["message"]["error"], r["note"])
        for r in read_trace(path / "frontend.jsonl")
    ]


def test_each_part_is_traced_out_with_its_command_and_in_with_what_it_said(tmp_path: Path) -> None:
    trace = TraceWriter(tmp_path, "frontend")
    both = VerifyMacAndPin(mac=VerifyMac(mak_under_lmk=_KEY, data=b"body", mac=bytes(8)), pin=_pin())
    EffectTrace(trace, both, _CORRELATION).answered((True, PinVerification.WRONG_PIN))
    EffectTrace(trace, _pin(ksn=bytes(10)), _CORRELATION).answered(PinVerification.OK)
    EffectTrace(trace, GenerateMac(mak_under_lmk=_KEY, data=b"answer"), _CORRELATION).answered(
        PeerFailure("hsm", FailureKind.TIMEOUT)
    )
    trace.close()
    assert _shown(tmp_path) == [
        ("out", "hsm", "hsm", "M8", None, "VerifyMac"),
        ("out", "hsm", "hsm", "DC", None, "VerifyPin"),
        ("in", "hsm", "hsm", "M8", None, "verified"),  # the answer is shown by its command's code and the note
        ("in", "hsm", "hsm", "DC", None, "PIN wrong_pin"),
        ("out", "hsm", "hsm", "GQ", None, "VerifyPin"),  # a DUKPT PIN: verified from the BDK and the KSN
        ("in", "hsm", "hsm", "GQ", "00", "PIN ok"),
        ("out", "hsm", "hsm", "M6", None, "GenerateMac"),
        ("in", "hsm", "hsm", "M6", None, "hsm timeout"),
    ]
    assert {r["correlation_id"] for r in read_trace(tmp_path / "frontend.jsonl")} == {_CORRELATION}
