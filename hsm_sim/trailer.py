"""The message trailer of an HSM command: as payShield allows, a host may end a command, after its last field,
with the delimiter X'19' and up to 32 characters, which the HSM hands back unchanged at the end of its answer.

acqsim's front-end puts the transaction id there (``X'19' txn:T10000001-000006``), so that the HSM's log lines
carry the id of the purchase each command belongs to (docs/logging.md). The ``txn:`` marker after the delimiter
keeps the end of a binary last field (M6/M8 message data) from being taken for a trailer: only a delimiter,
the marker and printable characters up to the end make one.
"""

from __future__ import annotations

from typing import Final

DELIMITER: Final = b"\x19"
MARKER: Final = b"txn:"
#: Characters after the delimiter, the marker included (payShield's limit).
MAX_TRAILER_LEN: Final = 32
_ALLOWED_CHARS: Final = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
_ALLOWED: Final = frozenset(_ALLOWED_CHARS)


def with_trailer(payload: bytes, txn: str | None) -> bytes:
    """``payload`` with the trailer carrying ``txn`` (none when ``txn`` is absent or does not fit)."""
    if not txn:
        return payload
    text = MARKER + txn.encode("ascii", "replace")
    if len(text) > MAX_TRAILER_LEN or not set(text[len(MARKER) :]) <= _ALLOWED:
        return payload
    return payload + DELIMITER + text


def split_trailer(payload: bytes) -> tuple[bytes, bytes]:
    """(the message without its trailer, the trailer with its delimiter — empty when there is none)."""
    start = payload.rfind(DELIMITER + MARKER)
    if start < 0:
        return payload, b""
    text = payload[start + len(DELIMITER) :]
    value = text[len(MARKER) :]
    # value.translate(None, allowed) deletes every allowed character: anything left is not allowed
    if len(text) > MAX_TRAILER_LEN or not value or value.translate(None, _ALLOWED_CHARS):
        return payload, b""
    return payload[:start], payload[start:]


def trailer_txn(trailer: bytes) -> str | None:
    """The transaction id a trailer carries."""
    return trailer[len(DELIMITER) + len(MARKER) :].decode("ascii") if trailer else None
