"""The MPOS e-slip: a drawn signature attached to the e-receipt, its digest, the QR link, and bad signatures."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from terminal.eslip import PAD_HEIGHT, PAD_WIDTH, Signature, SignatureError, eslip_html, eslip_json, verify_eslip
from terminal.receipt import ReceiptData

DATA = ReceiptData(
    merchant_name="ACQSIM TEST MARKET <b>",
    merchant_id="898100000000002",
    terminal_id="10000002",
    operator="001",
    pan="6200001000000003",
    kind="purchase",
    batch="000001",
    stan="000007",
    rrn="263380000007",
    auth_code="000012",
    date="1204",
    time="095300",
    amount=4200,
)
SIGNATURE = Signature((((10, 100), (60, 40), (120, 110)), ((150, 80), (200, 80))))
URL = "https://receipts.acqsim.test/10000002/000007"


def test_the_eslip_carries_the_signature_a_qr_and_no_pan() -> None:
    page = eslip_html(DATA, SIGNATURE, URL)
    assert "M10 100 L60 40 L120 110" in page and 'class="segno"' in page and URL in page
    assert "6200001000000003" not in page and "620000******0003" in page
    assert "<b>" not in page and "&lt;b&gt;" in page  # escaped
    sent = eslip_json(DATA, SIGNATURE, URL)
    assert "6200001000000003" not in sent and verify_eslip(sent)
    tampered = json.loads(sent)
    tampered["receipt"][-1][1] = "RMB 4,200.00"
    assert not verify_eslip(json.dumps(tampered))


@pytest.mark.parametrize(
    "strokes",
    [[], [[]], [[[0, PAD_HEIGHT + 1]]], [[[-1, 0]]], [[["x", 1]]], "nope", [[[1, 1]]] * 33],
)
def test_bad_signatures_are_refused(strokes: object) -> None:
    with pytest.raises(SignatureError):
        Signature.from_json(strokes)


points = st.tuples(st.integers(0, PAD_WIDTH), st.integers(0, PAD_HEIGHT))


@given(st.lists(st.lists(points, min_size=1, max_size=20), min_size=1, max_size=5))
def test_any_signature_round_trips(strokes: list[list[tuple[int, int]]]) -> None:
    signature = Signature.from_json(strokes)
    assert Signature.from_json(signature.to_json()) == signature
    assert verify_eslip(eslip_json(DATA, signature, URL))
