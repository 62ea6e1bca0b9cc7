"""Named constants agree with PROTOCOL.md: answer MTIs, every response code has a meaning."""

from __future__ import annotations

import pytest

from wire.constants import RESPONSE_MEANINGS, Mti, NetworkCode, ResponseCode, response_mti

# PROTOCOL.md §3a, copied as data.
PROTOCOL_CODES = [
    "00",
    "03",
    "05",
    "12",
    "13",
    "14",
    "22",
    "25",
    "30",
    "40",
    "41",
    "43",
    "51",
    "54",
    "55",
    "58",
    "61",
    "62",
    "65",
    "75",
    "77",
    "94",
    "96",
    "98",
    "99",
    "A0",
]


@pytest.mark.parametrize(
    ("request_mti", "answer"),
    [("0100", "0110"), ("0200", "0210"), ("0220", "0230"), ("0320", "0330"), ("0400", "0410"), ("0800", "0810")],
)
def test_response_mti(request_mti: str, answer: str) -> None:
    assert response_mti(request_mti) == answer
    assert Mti(answer)  # every answer is a named MTI


@pytest.mark.parametrize("bad", ["0210", "020", "02A0"])
def test_response_mti_refuses_non_requests(bad: str) -> None:
    with pytest.raises(ValueError, match="not a request MTI"):
        response_mti(bad)


def test_every_protocol_response_code_is_named_with_a_meaning() -> None:
    # §3a's codes, and 91 (issuer or switch inoperative), the scheme switch's decline when it has no stand-in (§10)
    assert sorted(code.value for code in ResponseCode) == sorted([*PROTOCOL_CODES, "91"])
    assert set(RESPONSE_MEANINGS) == set(ResponseCode)
    assert ResponseCode("A0").meaning == "MAC check failed: sign on again"


def test_settlement_and_batch_upload_share_network_code_201() -> None:
    assert NetworkCode.BATCH_UPLOAD.value == NetworkCode.SETTLEMENT.value == "201"
