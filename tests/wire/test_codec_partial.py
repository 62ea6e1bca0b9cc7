"""``decode_host_partial``: a bad host message still yields the fields before its first bad one (and the error),
so that a server can answer it 30 when what identifies it was readable (issue #14.1)."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.wire.test_codec import host_messages
from wire.codec import decode_host, decode_host_partial, encode_host
from wire.errors import MessageDecodeError

#: A host request as the front-end sends one (test data: a test PAN, made-up ids).
REQUEST = {
    "t": "0200",
    "2": "6200001000000003",
    "3": "000000",
    "4": "000000000100",
    "11": "000001",
    "32": "12345678",
    "37": "263380000007",
    "41": "10000001",
    "48": "XYZ",
    "49": "156",
}


@given(st.binary(max_size=300))
@example(b"")
@example(b"0200")
def test_any_bytes_give_fields_or_our_error_never_an_exception(data: bytes) -> None:
    fields, error = decode_host_partial(data)
    if error is None:
        assert fields == decode_host(data)
    else:
        assert isinstance(error, MessageDecodeError)
        with pytest.raises(MessageDecodeError):
            decode_host(data)


@given(host_messages(), st.data())
def test_a_cut_message_keeps_exactly_the_fields_before_the_cut(fields: dict[str, str], data: st.DataObject) -> None:
    encoded = encode_host(fields)
    cut = data.draw(st.integers(min_value=0, max_value=len(encoded) - 1))
    partial, error = decode_host_partial(encoded[:cut])
    assert error is not None
    assert all(fields[name] == value for name, value in partial.items())  # nothing made up, nothing cut short


def test_a_bad_field_after_32_and_37_leaves_them_readable() -> None:
    encoded = encode_host(REQUEST)
    broken = encoded.replace(b"003XYZ", b"009XYZ")  # field 48 claims more bytes than the message has
    partial, error = decode_host_partial(broken)
    assert error is not None and error.field == "48"
    assert (partial["t"], partial["32"], partial["37"]) == ("0200", "12345678", "263380000007")
    assert "48" not in partial and "49" not in partial
