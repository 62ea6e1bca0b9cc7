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
    read_additional_amounts,
)
from wire.header import PosHeader
from wire.masking import mask_pan, mask_track
from wire.posframe import PosFrame
from wire.tpdu import Tpdu, answer_head, destination, with_source


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
    assert header.with_processing_request(0) is header  # unchanged: no copy
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


def test_tpdu_with_src_and_dst_and_bad_addresses() -> None:
    tpdu = Tpdu(dst="0003", src="0000").with_src("01A2")
    assert tpdu.to_bytes() == bytes.fromhex("60000301A2")
    assert tpdu.with_dst("0004").swapped() == Tpdu(dst="01A2", src="0004")
    with pytest.raises(ValueError, match="4 upper-case hex"):
        Tpdu(dst="3", src="0000")


@pytest.mark.parametrize("value", ["0000010001", "0000010001231", "000001000123112"])
def test_field61_refuses_partial_lengths(value: str) -> None:
    with pytest.raises(MessageDecodeError) as info:
        Field61.parse(value)
    assert info.value.field == "61"


def test_field60_extra_digits_and_errors() -> None:
    f60 = Field60.parse("2200000100012")
    assert (f60.txn_type, f60.batch, f60.network_code, f60.extra) == ("22", "000001", "000", "12")
    assert f60.encode() == "2200000100012"
    assert Field60.parse("22000001").network_code == "000"
    with pytest.raises(MessageDecodeError):
        Field60.parse("2200")
    with pytest.raises(MessageDecodeError):
        Field60(txn_type="2A")


totals = st.builds(
    CardTotals,
    debit_amount=st.integers(0, 10**12 - 1),
    debit_count=st.integers(0, 999),
    credit_amount=st.integers(0, 10**12 - 1),
    credit_count=st.integers(0, 999),
    flag=st.sampled_from("0123"),
)


@given(st.builds(SettlementTotals, domestic=totals, foreign=totals))
def test_settlement_totals_round_trip(value: SettlementTotals) -> None:
    text = value.encode()
    assert len(text) == 62 and text.isdigit()
    assert SettlementTotals.parse(text) == value


details = st.builds(
    UploadDetail,
    stan=st.text("0123456789", min_size=6, max_size=6),
    pan=st.text("0123456789", min_size=12, max_size=19).map(lambda p: "6" + p),
    amount=st.integers(0, 10**12 - 1),
    card_org=st.sampled_from(["00", "01"]),
)


@given(st.lists(details, min_size=1, max_size=8).map(tuple))
def test_batch_upload_round_trip(items: tuple[UploadDetail, ...]) -> None:
    value = BatchUploadDetails(details=items)
    text = value.encode()
    assert len(text) == 2 + 40 * len(items)
    assert BatchUploadDetails.parse(text) == value


def test_batch_upload_limits() -> None:
    with pytest.raises(MessageDecodeError):
        BatchUploadDetails(details=())
    one = UploadDetail(stan="000001", pan="6200001000000003", amount=1).encode()
    with pytest.raises(MessageDecodeError, match="does not match"):
        BatchUploadDetails.parse("02" + one)


PIK = "1A4D672DCA6CB33501E9D8DA9182FC1F"
MAK = "01E9D8DA9182FC1F1FD1B02B237AF9AE"


def test_sign_on_keys_with_track_data_key_and_validation() -> None:
    keys = SignOnKeys(
        pik_under_tmk=PIK,
        pik_kcv="164D70B9",
        mak_under_tmk=MAK,
        mak_kcv="76FE1391",
        tdk_under_tmk=PIK,
        tdk_kcv="AAAA0000",
    )
    text = keys.encode()
    assert len(text) == 120 and text[80:112] == PIK
    assert SignOnKeys.parse(text) == keys
    assert SignOnKeys.parse(text.lower()) == keys
    with pytest.raises(MessageDecodeError, match="PIK"):
        SignOnKeys(pik_under_tmk=PIK[:-2], pik_kcv="164D70B9", mak_under_tmk=MAK, mak_kcv="76FE1391")
    with pytest.raises(MessageDecodeError, match="track data key"):
        SignOnKeys(pik_under_tmk=PIK, pik_kcv="164D70B9", mak_under_tmk=MAK, mak_kcv="76FE1391", tdk_under_tmk=PIK)
    with pytest.raises(MessageDecodeError) as info:
        SignOnKeys.parse("ZZ" * 40)
    assert info.value.field == "62" and "ZZ" not in str(info.value)


def test_additional_amounts_vectors_and_errors() -> None:
    ledger = AdditionalAmount(amount=-1500, amount_type="01")
    assert ledger.encode() == "0001156D000000001500"
    both = AdditionalAmount.encode_many([ledger, AdditionalAmount(amount=2000)])
    assert both == "0001156D0000000015000002156C000000002000"
    assert AdditionalAmount.parse_many(both) == (ledger, AdditionalAmount(amount=2000))
    for bad in ("0001156X000000001500", "0001156D00000000150", "00011A6C000000001500"):
        with pytest.raises(MessageDecodeError):
            AdditionalAmount.parse_many(bad) if len(bad) != 20 else AdditionalAmount.parse(bad)
    with pytest.raises(MessageDecodeError):
        AdditionalAmount(amount=10**12)
    with pytest.raises(MessageDecodeError):
        AdditionalAmount(amount=1, currency="CNY")


@given(st.text(alphabet="0123456789CDX", max_size=60))
def test_field_54_read_without_objects_agrees_with_parse_many(value: str) -> None:
    """The front-end's reader of field 54 (no object per entry) takes and refuses exactly what parse_many does."""
    try:
        expected = [(a.amount_type, a.currency, a.amount) for a in AdditionalAmount.parse_many(value)]
    except MessageDecodeError as refused:
        with pytest.raises(MessageDecodeError) as info:
            read_additional_amounts(value)
        assert (info.value.field, str(info.value)) == (refused.field, str(refused))
    else:
        assert read_additional_amounts(value) == expected


@given(st.lists(st.builds(AdditionalAmount, amount=st.integers(-(10**12) + 1, 10**12 - 1)), max_size=3))
def test_field_54_entries_read_back_as_encoded(amounts: list[AdditionalAmount]) -> None:
    encoded = AdditionalAmount.encode_many(amounts)
    assert read_additional_amounts(encoded) == [(a.amount_type, a.currency, a.amount) for a in amounts]


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("6200001000000003", "620000******0003"),
        ("6200001000000000003", "620000*********0003"),
        ("12345678901", "123456*8901"),
        ("1234567890", "******7890"),
        ("1234", "****"),
        ("", ""),
    ],
)
def test_mask_pan_shows_at_most_first_6_and_last_4(value: str, masked: str) -> None:
    assert mask_pan(value) == masked


def test_mask_track_hides_everything_after_the_separator() -> None:
    assert mask_track("6200001000000003=30122011630800000") == "620000******0003=" + "*" * 17
    assert mask_track("6200001000000003") == "620000******0003"
    assert mask_track("996=1=2") == "***=***"


hex4 = st.text("0123456789ABCDEF", min_size=4, max_size=4)


@given(hex4, hex4)
def test_tpdu_round_trip_and_double_swap(dst: str, src: str) -> None:
    tpdu = Tpdu(dst=dst, src=src)
    assert Tpdu.parse(b"\xff" + tpdu.to_bytes(), offset=1) == tpdu
    assert tpdu.swapped().swapped() == tpdu


@given(hex4, hex4, st.integers(min_value=0, max_value=0xFFFF), st.binary(max_size=40))
def test_the_nacs_byte_rewrites_equal_the_tpdus_own(dst: str, src: str, address: int, body: bytes) -> None:
    """What the NAC does to a frame's bytes is what the Tpdu object says: a return address as SRC, DST read as a
    number, the answer's TPDU with DST and SRC exchanged."""
    tpdu = Tpdu(dst=dst, src=src)
    frame = tpdu.to_bytes() + body
    assert with_source(frame, address) == tpdu.with_src(f"{address:04X}").to_bytes() + body
    assert destination(frame) == int(dst, 16)
    assert answer_head(frame) == tpdu.swapped().to_bytes()


@pytest.mark.parametrize("frame", [b"", b"\x60\x00\x03\x00", b"\x61\x00\x03\x00\x00"])
def test_a_destination_is_read_only_from_a_whole_tpdu(frame: bytes) -> None:
    with pytest.raises(TpduError) as info:
        destination(frame)
    assert info.value.offset == 0


@given(
    st.sampled_from(["60", "61", "67"]),
    st.integers(0, 9),
    st.integers(0, 9),
    st.text("0123456789", min_size=6, max_size=6),
)
def test_header_round_trip(app: str, status: int, request: int, reserved: str) -> None:
    header = PosHeader(app_type=app, terminal_status=status, processing_request=request, reserved=reserved)
    assert len(header.to_bytes()) == 6
    assert PosHeader.parse(header.to_bytes()) == header
