"""ASCII TLV (field 59, the wallet and ECR links): round trips, and any input either decodes or raises ours."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from wire.ascii_tlv import MAX_VALUE_LEN, encode_ascii_tlv, parse_ascii_tlv, parse_ascii_tlv_bytes
from wire.codec import decode_pos_body, encode_pos_body
from wire.dissect import dissect_pos
from wire.ecrlink import ECR_LINK, EcrKind
from wire.errors import MessageDecodeError, MessageEncodeError
from wire.field59 import Field59, PaymentCodeError, Wallet, mask_code, wallet_of
from wire.merchantlink import encode_items, parse_items
from wire.tlvlink import LinkMessage, LinkSpec, decode_message, encode_message
from wire.walletlink import WALLET_LINK, Kind

TAGS = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcxyz0123456789", min_size=2, max_size=2)
VALUES = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)
UNIONPAY_CODE = "6212345678901234567"
ITEM_NAME_CHARS = st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters=";*")


@given(st.dictionaries(TAGS, VALUES, max_size=6))
def test_tlv_round_trip(items: dict[str, str]) -> None:
    text = encode_ascii_tlv(items.items(), field="59")
    assert parse_ascii_tlv(text, field="59") == tuple(items.items())
    # read again after trailing garbage: the error points past the good part
    with pytest.raises(MessageDecodeError) as caught:
        parse_ascii_tlv(text + "A", field="59")
    assert caught.value.offset == len(text)


@given(st.binary(max_size=60))
@example(b"A3999")
@example(b"A3\xff01x")
@example(b"A3001xA3001y")
def test_any_bytes_decode_or_raise_a_decode_error_with_an_offset(data: bytes) -> None:
    try:
        items = parse_ascii_tlv_bytes(data, field="59")
    except MessageDecodeError as exc:
        assert exc.field == "59"
        assert exc.offset is not None
        assert 0 <= exc.offset <= len(data)
    else:
        assert encode_ascii_tlv(items, field="59").encode() == data


@pytest.mark.parametrize(
    ("text", "offset", "words"),
    [
        ("A3019" + "1" * 18, 0, "runs past the end"),
        ("A3001xA2", 6, "ends inside"),
        ("a-001x", 0, "tag"),
        ("A30x1x", 2, "length"),
        ("A3001xA3001x", 6, "twice"),
        ("A3002x\t", 6, "non-printable"),
    ],
)
def test_precise_errors(text: str, offset: int, words: str) -> None:
    with pytest.raises(MessageDecodeError, match=words) as caught:
        parse_ascii_tlv(text, field="59")
    assert caught.value.offset == offset
    assert "1" * 18 not in str(caught.value)  # the value never appears in the error


def test_encode_refuses_what_the_format_cannot_carry() -> None:
    with pytest.raises(MessageEncodeError, match="longer"):
        encode_ascii_tlv([("A3", "1" * (MAX_VALUE_LEN + 1))], field="59")
    with pytest.raises(MessageEncodeError, match="tag"):
        encode_ascii_tlv([("a-", "1")], field="59")
    with pytest.raises(MessageEncodeError, match="twice"):
        encode_ascii_tlv([("A3", "1"), ("A3", "2")], field="59")


@given(
    st.builds(
        Field59,
        serial=st.none() | st.text(alphabet="0123456789ABCDEF", min_size=1, max_size=20),
        payment_code=st.none() | st.text(alphabet="0123456789", min_size=19, max_size=19),
        voucher=st.none() | st.text(alphabet="0123456789", min_size=1, max_size=32),
        order=st.none() | st.text(alphabet="0123456789ABCDEF", min_size=1, max_size=32),
        qr_content=st.none() | VALUES,
        order_lifetime_s=st.none() | st.integers(0, 99999),
        other=st.just((("Z9", "kept"),)),
    )
)
def test_field59_round_trip(value: Field59) -> None:
    assert Field59.parse(value.encode()) == value


def test_field59_travels_in_a_pos_body_and_the_dissection_masks_the_code() -> None:
    f59 = Field59(payment_code=UNIONPAY_CODE, serial="SN0001").encode()
    body = encode_pos_body({"t": "0200", "3": "000000", "4": "000000001234", "22": "032", "59": f59})
    assert decode_pos_body(body)["59"] == f59
    shown = dissect_pos(bytes.fromhex("6000030000603100000000") + body)
    text = str(shown)
    assert UNIONPAY_CODE not in text
    assert mask_code(UNIONPAY_CODE) in text


@pytest.mark.parametrize(
    ("code", "wallet"),
    [(UNIONPAY_CODE, Wallet.UNIONPAY), ("1" + "3" * 18, Wallet.WECHAT), ("2" + "8" * 18, Wallet.ALIPAY)],
)
def test_payment_code_prefixes(code: str, wallet: Wallet) -> None:
    assert wallet_of(code) is wallet


@pytest.mark.parametrize("code", ["62123", "9" * 19, "6212x45678901234567", "16" + "0" * 17, "31" + "0" * 17])
def test_payment_codes_that_name_no_wallet(code: str) -> None:
    with pytest.raises(PaymentCodeError):
        wallet_of(code)


def _message(link: LinkSpec) -> st.SearchStrategy[LinkMessage]:
    def build(kind: str, answer: bool, draw: st.DataObject) -> LinkMessage:
        spec = link.kinds[kind]
        required = spec.answer | ({"RC"} if answer else set()) if answer else spec.request
        values = {}
        for tag in sorted(required):
            tag_spec = link.tags[tag]
            alphabet = "0123456789" if tag_spec.digits else "ABCXYZ 019-"
            values[tag] = draw.draw(st.text(alphabet=alphabet, min_size=tag_spec.min_len, max_size=tag_spec.max_len))
        return LinkMessage(kind, tuple(values.items()))

    return st.builds(build, st.sampled_from(sorted(link.kinds)), st.booleans(), st.data())


@given(_message(WALLET_LINK))
def test_wallet_link_round_trip(message: LinkMessage) -> None:
    assert decode_message(encode_message(message, WALLET_LINK), WALLET_LINK) == message


@given(_message(ECR_LINK))
def test_ecr_link_round_trip(message: LinkMessage) -> None:
    if message.kind == EcrKind.ERROR and not message.is_answer:
        return  # ERRR exists only as an answer: its request form is refused (below)
    assert decode_message(encode_message(message, ECR_LINK), ECR_LINK) == message


@given(st.binary(max_size=80))
@example(b"MT004SALE")
@example(b"MT004SALEAM0031x3ER001a")
def test_any_link_bytes_decode_or_raise_a_decode_error(data: bytes) -> None:
    try:
        decode_message(data, ECR_LINK)
    except MessageDecodeError as exc:
        assert exc.field is not None


@pytest.mark.parametrize(
    ("payload", "field", "words"),
    [
        (b"MT004SALEER001r", "AM", "lacks AM"),
        (b"MT004SALEAM0031x3ER001r", "AM", "digits"),
        (b"MT004NOPE", "MT", "unknown message kind"),
        (b"MT004SALEAM00212ER001rZZ001q", "ZZ", "unknown tag"),
        (b"AM00212MT004SALE", "MT", "starts with its kind"),
        (b"MT004ERRR", "RC", "lacks RC"),
    ],
)
def test_link_errors_name_the_tag(payload: bytes, field: str, words: str) -> None:
    with pytest.raises(MessageDecodeError, match=words) as caught:
        decode_message(payload, ECR_LINK)
    assert caught.value.field == field


def test_link_message_helpers() -> None:
    request = LinkMessage.of(Kind.PAY, TI="10000001", MI="100000000000001", ST=12, DT="1204", AM=1234, A3=UNIONPAY_CODE)
    assert request["ST"] == "12"
    assert request.get("A4") is None
    with pytest.raises(MessageEncodeError, match="ST"):
        encode_message(request, WALLET_LINK)  # STAN is 6 digits
    answer = request.answer("00", A4="V1")
    assert answer.is_answer
    assert answer.result == "00"
    decoded = decode_message(encode_message(answer, WALLET_LINK), WALLET_LINK)
    assert decoded.as_dict() == {"MT": "PAYC", "RC": "00", "A4": "V1"}


@given(
    st.lists(
        st.tuples(
            st.text(
                alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters=";*"), min_size=1
            ),
            st.integers(0, 999),
            st.integers(0, 10**6),
        ),
        max_size=5,
    )
)
def test_items_round_trip(items: list[tuple[str, int, int]]) -> None:
    assert parse_items(encode_items(tuple(items))) == tuple(items)
