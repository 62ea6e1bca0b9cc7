"""Field 55 as BER-TLV, and card data masked wherever it travels inside other fields (48, 55, 62)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wire.codec import encode_pos_body
from wire.dissect import HIDDEN, as_text, dissect_pos
from wire.errors import MessageDecodeError
from wire.fields import BatchUploadDetails, UploadDetail
from wire.tlv import encode_tlv, parse_tlv, shown_tlv

PAN = "6200001000000003"
TRACK_BCD = "6200001000000003D30122011234500000"
ICC = (
    "9F2608"
    + "1122334455667788"
    + "5A08"
    + PAN
    + "5F3401"
    + "01"
    + "5710"
    + TRACK_BCD[:32]
    + "5F200A"
    + "5A48414E472053414E20"
)


def payload(fields: dict[str, str]) -> bytes:
    return bytes.fromhex("6000030000603100000000") + encode_pos_body(fields)


def test_icc_data_reads_as_tlv_with_card_data_masked() -> None:
    items = parse_tlv(bytes.fromhex(ICC))
    assert [tag for tag, _ in items] == ["9F26", "5A", "5F34", "57", "5F20"]
    shown = shown_tlv(bytes.fromhex(ICC))
    assert "9F26 (application cryptogram)=1122334455667788" in shown and "5A (PAN)=620000******0003" in shown
    assert "5F34 (PAN sequence number)=01" in shown
    assert PAN not in shown and "ZHANG" not in shown and "5A48414E47" not in shown
    assert PAN in shown_tlv(bytes.fromhex(ICC), unmask=True)


def test_field_55_in_a_dissection_is_masked_and_its_raw_bytes_hidden() -> None:
    dissection = dissect_pos(payload({"t": "0200", "3": "000000", "55": ICC}))
    assert "5A (PAN)=620000******0003" in dissection["fields"]["55"]
    assert PAN not in as_text(dissection) and PAN not in str(dissection["fields"])
    assert dissect_pos(payload({"t": "0200", "55": "5A08620000"}))["fields"]["55"] == HIDDEN  # unreadable


def test_batch_upload_details_in_48_are_masked() -> None:
    details = BatchUploadDetails(
        details=(UploadDetail(stan="000001", pan=PAN, amount=100), UploadDetail(stan="000002", pan=PAN, amount=5))
    ).encode()
    dissection = dissect_pos(payload({"t": "0320", "48": details, "60": "00000001201"}))
    assert dissection["fields"]["48"].count("620000******0003") == 2
    assert PAN not in as_text(dissection)
    assert dissect_pos(payload({"t": "0320", "48": "0002", "60": "00000001202"}))["fields"]["48"] == "0002"
    assert dissect_pos(payload({"t": "0320", "48": "03" + "1" * 40}))["fields"]["48"] == HIDDEN


def test_a_malformed_tlv_names_field_55_and_an_offset() -> None:
    with pytest.raises(MessageDecodeError) as caught:
        parse_tlv(bytes.fromhex("9F2608112233"))
    assert caught.value.field == "55" and caught.value.offset == 2  # the length byte that promises too much


tags = st.sampled_from(["9F26", "9F27", "5A", "57", "95", "9F10", "9F36", "82", "5F2A", "DF31"])


@given(st.lists(st.tuples(tags, st.binary(max_size=300)), max_size=8))
def test_well_formed_tlv_reads_back(items: list[tuple[str, bytes]]) -> None:
    assert parse_tlv(encode_tlv(items)) == items


@given(st.binary(max_size=64))
def test_any_bytes_parse_or_raise_our_error(data: bytes) -> None:
    try:
        parse_tlv(data)
    except MessageDecodeError as exc:
        assert exc.field == "55" and exc.offset is not None and 0 <= exc.offset < len(data)
