"""The front-end's routing rule in the core (frontend/routing.py): an off-us card yields exactly one scheme effect
with its PIN block (no PIN check of the acquirer's own), an unknown BIN is declined 14 before anything is asked,
an on-us card is untouched; and the BIN table itself."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from core_ledger.api import LedgerAnswer
from frontend.effects import (
    AskLedger,
    AskScheme,
    GenerateMac,
    LoadSession,
    RecordAnswer,
    RecordRequest,
    ReleasePinTry,
    ReservePinTry,
    Together,
    VerifyMac,
    VerifyMacAndPin,
)
from frontend.routing import Route, SchemeRoute, route_of
from hsm_sim.client import PinVerification
from tests.frontend.harness import Harness
from tests.frontend.test_effects import RRN, Answers, numbered, purchase, scripted
from wire.constants import ResponseCode as RC

ZPK = "U" + "A" * 32
OFF_US = SchemeRoute(on_us=("629999",), scheme=("620000",), zpk_under_lmk=ZPK, mcc="5812")
UNKNOWN = SchemeRoute(on_us=("629999",), scheme=("623050",), zpk_under_lmk=ZPK)


@pytest.fixture
def fe(tmp_path: Path) -> Harness:
    return Harness(tmp_path).signed_on()


def test_the_bin_table() -> None:
    assert route_of(None, "4111111111111111") is Route.ON_US  # no switch: everything is on-us
    assert OFF_US.route("6299990000000001") is Route.ON_US
    assert OFF_US.route("6200001000000003") is Route.SCHEME
    assert UNKNOWN.route("6200001000000003") is None
    assert SchemeRoute(on_us=("6299",), zpk_under_lmk=ZPK).route("4111111111111111") is Route.SCHEME  # all else
    assert ZPK not in repr(OFF_US)


def test_an_off_us_purchase_yields_one_scheme_effect_carrying_the_pin(fe: Harness) -> None:
    fe.ctx = dataclasses.replace(fe.ctx, scheme=OFF_US)
    request, session = purchase(fe)  # the harness's card 6200001000000003: off-us in this table
    answers: Answers = {
        LoadSession: lambda _: session,
        VerifyMac: lambda _: True,
        RecordRequest: numbered,
        AskScheme: lambda _: LedgerAnswer(response_code=RC.APPROVED, rrn=RRN, auth_code="S00001"),
        RecordAnswer: lambda _: None,
        GenerateMac: lambda _: bytes(8),
    }
    effects, reply = scripted(request, fe, answers)
    assert [type(e) for e in effects] == [LoadSession, VerifyMac, RecordRequest, AskScheme, Together]
    together = effects[4]
    assert isinstance(together, Together) and [type(e) for e in together.effects] == [RecordAnswer, GenerateMac]
    record, asked = effects[2], effects[3]
    assert isinstance(record, RecordRequest) and isinstance(asked, AskScheme)
    assert asked == AskScheme(
        request=numbered(record),
        tpk_under_lmk=session.pik,
        zpk_under_lmk=ZPK,
        pin_block=bytes.fromhex(request.fields["52"]),
        track2=request.fields["35"],
        mcc="5812",
    )
    assert reply.body is not None and reply.note.endswith("→ 00")


def test_an_unknown_bin_is_declined_14_and_nothing_is_asked(fe: Harness) -> None:
    fe.ctx = dataclasses.replace(fe.ctx, scheme=UNKNOWN)
    request, session = purchase(fe)
    answers: Answers = {
        LoadSession: lambda _: session,
        VerifyMac: lambda _: True,
        RecordRequest: numbered,
        RecordAnswer: lambda _: None,
        GenerateMac: lambda _: bytes(8),
    }
    effects, reply = scripted(request, fe, answers)
    assert not any(isinstance(e, AskLedger | AskScheme | ReservePinTry) for e in effects)
    assert reply.note.endswith("→ 14")


def test_an_on_us_card_is_untouched_by_the_table(fe: Harness) -> None:
    fe.ctx = dataclasses.replace(fe.ctx, scheme=SchemeRoute(on_us=("620000",), zpk_under_lmk=ZPK))
    request, session = purchase(fe)
    answers: Answers = {
        LoadSession: lambda _: session,
        ReservePinTry: lambda _: True,
        VerifyMacAndPin: lambda _: (True, PinVerification.OK),
        ReleasePinTry: lambda _: None,
        RecordRequest: numbered,
        AskLedger: lambda _: LedgerAnswer(response_code=RC.APPROVED, rrn=RRN, auth_code="123456"),
        RecordAnswer: lambda _: None,
        GenerateMac: lambda _: bytes(8),
    }
    effects, _ = scripted(request, fe, answers)
    assert AskLedger in [type(e) for e in effects] and AskScheme not in [type(e) for e in effects]
