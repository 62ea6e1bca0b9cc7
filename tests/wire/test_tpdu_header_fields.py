"""TPDU, the POS header, the sub-fields and masking."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wire.errors import HeaderError, MessageDecodeError, TpduError
from wire.fields import (
    AdditionalAmount,
    BatchUploadDetails,
    CardTotals,
    Field60,
    Field61,
    SettlementTotals,
    SignOnKeys,
    UploadDetail,
)
from wire.header import PosHeader
from wire.masking import mask_pan, mask_track
from wire.posframe import PosFrame
from wire.tpdu import Tpdu


def test_tpdu_parse_build_swap() -> None:
    tpdu = Tpdu.parse(bytes.fromhex("6000030000"))
    assert (tpdu.dst, tpdu.src) == ("0003", "0000")
    assert tpdu.swapped().to_bytes() == bytes.fromhex("6000000003")
    with pytest.raises(TpduError) as info:
        Tpdu.parse(bytes.fromhex("6100030000"), offset=0)
    assert info.value.offset == 0
    with pytest.raises(TpduError):
        Tpdu.parse(b"\x60\x00")


def test_header_parse_build_and_errors() -> None:
    header = PosHeader.parse(bytes.fromhex("613100000000"))
    assert header.app_type == "61" and header.processing_request == 0
    assert header.with_processing_request(3).to_bytes() == bytes.fromhex("613103000000")
    with pytest.raises(HeaderError) as info:
        PosHeader.parse(bytes.fromhex("6131000A0000"))
    assert info.value.offset == 3


def test_posframe_round_trip_and_answer() -> None:
    frame = PosFrame(tpdu=Tpdu(dst="0003", src="0000"), header=PosHeader(), body=b"\x08\x00" + bytes(8))
    assert PosFrame.parse(frame.to_bytes()) == frame
    assert frame.to_wire()[:2] == len(frame.to_bytes()).to_bytes(2, "big")
    assert frame.answer(b"\x08\x10").tpdu == Tpdu(dst="0000", src="0003")


@given(
    st.text("0123456789", min_size=2, max_size=2),
    st.text("0123456789", min_size=6, max_size=6),
    st.text("0123456789", min_size=3, max_size=3),
)
def test_field60_round_trip(kind: str, batch: str, code: str) -> None:
    f60 = Field60(txn_type=kind, batch=batch, network_code=code)
    assert Field60.parse(f60.encode()) == f60


def test_field61_and_settlement_totals() -> None:
    assert Field61.parse("000001000123") == Field61(batch="000001", stan="000123")
    assert Field61.parse("0000010001231124").date == "1124"
    totals = SettlementTotals(
        domestic=CardTotals(debit_amount=12_800, debit_count=2, credit_amount=100, credit_count=1)
    )
    text = totals.encode()
    assert len(text) == 62 and text[:12] == "000000012800" and text[12:15] == "002"
    assert SettlementTotals.parse(text) == totals
    assert SettlementTotals.parse(totals.with_flags("1", "2").encode()).foreign.flag == "2"
    with pytest.raises(MessageDecodeError):
        SettlementTotals.parse("12")


def test_batch_upload_and_sign_on_keys() -> None:
    details = BatchUploadDetails(details=(UploadDetail(stan="000001", pan="6200001000000003", amount=100),))
    text = details.encode()
    assert text[:2] == "01" and text[10:30] == "00006200001000000003"
    assert BatchUploadDetails.parse(text) == details
    keys = SignOnKeys.parse(
        "1A4D672DCA6CB33501E9D8DA9182FC1F" + "164D70B9" + "01E9D8DA9182FC1F1FD1B02B237AF9AE" + "76FE1391"
    )
    assert keys.pik_kcv == "164D70B9" and keys.mak_kcv == "76FE1391" and keys.tdk_under_tmk is None
    with pytest.raises(MessageDecodeError):
        SignOnKeys.parse("00" * 10)


@given(st.integers(min_value=-(10**12) + 1, max_value=10**12 - 1))
def test_additional_amount_round_trip(amount: int) -> None:
    value = AdditionalAmount(amount=amount)
    assert len(value.encode()) == 20
    assert AdditionalAmount.parse(value.encode()) == value


def test_masking() -> None:
    assert mask_pan("6200001000000003") == "620000******0003"
    assert mask_pan("62000060000000061") == "620000*******0061"
    assert mask_pan("12345") == "*2345"
    assert mask_track("6200001000000003=3012201") == "620000******0003=*******"
