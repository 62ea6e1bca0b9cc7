"""The terminal's QR requests without a network: 22 = 032, field 59, no card data; a sale's reversal stored
first and kept while the sale is pending; a pending sale that ends paid joins the batch."""

from __future__ import annotations

import pytest

from terminal.session import Original, TerminalError
from tests.terminal.test_session import MAK, answer_to, fields_of, session
from wire.codec import decode_pos_body, encode_pos_body_with_mac
from wire.constants import TxnType
from wire.field59 import ENTRY_QR, Field59
from wire.paycrypto import mac_cup_ecb
from wire.posframe import PosFrame

CODE = "6212345678901234567"


def qr_answer(payload: bytes, code: str, qr_data: Field59) -> bytes:
    """An answer as the front-end gives it: the request's 4 and 11, 39, and field 59."""
    request = PosFrame.parse(payload)
    fields = decode_pos_body(request.body)
    reply = {k: v for k, v in fields.items() if k in ("3", "4", "11", "13", "41", "42", "60")}
    reply |= {"t": "0210", "39": code, "37": "000000000042", "59": qr_data.encode()}
    return request.answer(encode_pos_body_with_mac(reply, lambda block: mac_cup_ecb(MAK, block))).to_bytes()


def test_a_qr_sale_carries_the_code_in_59_and_no_card_data() -> None:
    pos = session()
    payload = pos.qr("qr_sale", amount=1234, qr_data=Field59(payment_code=CODE, serial="SN1"))
    fields = fields_of(payload)
    assert (fields["t"], fields["3"], fields["22"], fields["60"][:2]) == ("0200", "000000", ENTRY_QR, "22")
    assert not {"2", "14", "35", "52", "55"} & set(fields)
    assert Field59.parse(fields["59"]).payment_code == CODE
    pending = pos.state.pending_reversal
    assert pending is not None
    assert pending.fields["59"] == fields["59"]  # the reversal finds its wallet by the code's prefix


@pytest.mark.parametrize(
    ("kind", "mti", "processing", "txn_type"),
    [
        ("qr_order", "0200", "000000", TxnType.QR_ORDER),
        ("qr_query", "0200", "310000", TxnType.QR_QUERY),
        ("qr_cancel", "0200", "200000", TxnType.QR_ORDER_CANCEL),
    ],
)
def test_order_messages_move_no_money_and_store_no_reversal(
    kind: str, mti: str, processing: str, txn_type: str
) -> None:
    pos = session()
    fields = fields_of(pos.qr(kind, amount=500 if kind == "qr_order" else 0, qr_data=Field59(order="42")))
    assert (fields["t"], fields["3"], fields["60"][:2]) == (mti, processing, txn_type)
    assert pos.state.pending_reversal is None


def test_void_and_refund_quote_the_voucher() -> None:
    pos = session()
    void = fields_of(
        pos.qr("qr_void", amount=1234, qr_data=Field59(voucher="V1"), original=Original(stan="000007", rrn="R" * 12))
    )
    assert (void["60"][:2], void["37"], Field59.parse(void["59"]).voucher) == ("23", "R" * 12, "V1")
    refund = pos.qr(
        "qr_refund", amount=100, qr_data=Field59(voucher="V1"), original=Original(stan="000007", local_date="1204")
    )
    assert fields_of(refund)["t"] == "0220"


def test_a_pending_sale_keeps_its_reversal_until_it_ends() -> None:
    pos = session()
    payload = pos.qr("qr_sale", amount=150_000, qr_data=Field59(payment_code=CODE))
    pending = pos.receive("qr_sale", qr_answer(payload, "09", Field59(voucher="V9")))
    assert pending.trusted
    assert pos.state.pending_reversal is not None
    assert pos.state.batch_txns == []
    query = pos.qr("qr_query", qr_data=Field59(voucher="V9"))
    paid = pos.receive("qr_query", qr_answer(query, "00", Field59(voucher="V9")))
    pos.qr_settled(pending, paid)
    assert pos.state.pending_reversal is None
    [txn] = pos.state.batch_txns
    assert (txn.kind, txn.amount, txn.voucher) == ("qr_sale", 150_000, "V9")
    assert pos.totals().domestic.debit_amount == 150_000


def test_an_approved_sale_joins_the_batch_and_an_untrusted_answer_keeps_the_reversal() -> None:
    pos = session()
    payload = pos.qr("qr_sale", amount=1234, qr_data=Field59(payment_code=CODE))
    pos.receive("qr_sale", qr_answer(payload, "00", Field59(voucher="V1")))
    assert pos.state.batch_txns[0].voucher == "V1"
    assert pos.state.pending_reversal is None
    again = pos.qr("qr_sale", amount=1234, qr_data=Field59(payment_code=CODE))
    forged = answer_to(again, mac_key=bytes(16))
    assert not pos.receive("qr_sale", forged).trusted
    assert pos.state.pending_reversal is not None
    assert pos.state.pending_reversal.fields["39"] == "A0"


def test_not_signed_on() -> None:
    pos = session()
    pos.state.signed_on = False
    with pytest.raises(TerminalError):
        pos.qr("qr_sale", amount=1, qr_data=Field59(payment_code=CODE))
