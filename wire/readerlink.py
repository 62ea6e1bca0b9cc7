"""The MPOS card reader's link to its phone: the "Bluetooth" link modelled as a local TCP socket (docs/chip.md).

**Framing**: the POS link's 2-byte big-endian length prefix (acqkit's ``FramedConnection``), then one JSON
object in UTF-8; a frame holds at most :data:`MAX_FRAME_LEN` bytes. One answer per request, in order.

**Requests** (``"op"``):

- ``read``: ``{"op": "read", "card": PAN, "pin": "keyed" | "wrong" | "none"}`` — the simulator's stand-in for a
  cardholder at the reader: which TEST card is swiped, and whether its PIN is keyed on the reader's pad (its
  TEST PIN, a wrong one, or none). The PIN itself never crosses the link.
  Answer: ``{"ok": true, "scheme": "tdes" | "aes", "ksn": HEX, "pin_block": HEX | null, "track": HEX}`` — the
  KSN, the PIN block under the DUKPT PIN key (ISO 9564 format 0 / 4) and track 2 under the data key (CBC).
- ``status``: ``{"op": "status"}``. Answer: ``{"ok": true, "loaded": bool, "scheme": …, "key_id": HEX | null,
  "counter": int}`` (``key_id``: the KSN without its counter).
- ``load``: ``{"op": "load", "scheme": "tdes" | "aes", "initial_key": 32 HEX, "initial_ksn": HEX}`` — key
  injection: the IPEK (TDES, with the 10-byte initial KSN) or the AES-128 initial key (with its 8-byte initial
  key id), derived at the HSM or from the TEST BDK; the counter starts again at 0. Answer: ``{"ok": true,
  "key_id": HEX}``.

**Errors**: ``{"ok": false, "error": CODE, "reason": TEXT}`` with CODE one of :class:`LinkError`'s values; the
reason names the member at fault, never a key, PIN or card number. A malformed request is answered so and
the reader goes on serving.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from typing import Any, Final, Literal

MAX_FRAME_LEN: Final = 4096
SCHEMES: Final = ("tdes", "aes")
PIN_ENTRIES: Final = ("keyed", "wrong", "none")
_HEX: Final = frozenset("0123456789ABCDEFabcdef")
#: Key lengths and initial KSN / key id lengths on the link, in hex digits.
KEY_HEX: Final = 32
INITIAL_KSN_HEX: Final = {"tdes": 20, "aes": 16}

Scheme = Literal["tdes", "aes"]
PinEntry = Literal["keyed", "wrong", "none"]


class LinkError(enum.StrEnum):
    MALFORMED = "malformed"  # not JSON, not an object, an unknown op, a member missing or of the wrong form
    NOT_LOADED = "not_loaded"  # no keys injected yet
    UNKNOWN_CARD = "unknown_card"  # no such TEST card in the reader's slot
    EXHAUSTED = "exhausted"  # the reader used its last DUKPT counter: inject again


class ReaderLinkError(Exception):
    """A request or answer that breaks the link's rules, or a reader's refusal; ``code`` says which."""

    def __init__(self, code: LinkError, reason: str) -> None:
        super().__init__(f"{code.value}: {reason}")
        self.code = code
        self.reason = reason


@dataclasses.dataclass(frozen=True, slots=True)
class ReadCard:
    card: str = dataclasses.field(repr=False)
    pin: PinEntry


@dataclasses.dataclass(frozen=True, slots=True)
class Status:
    pass


@dataclasses.dataclass(frozen=True, slots=True)
class LoadKeys:
    scheme: Scheme
    initial_key: bytes = dataclasses.field(repr=False)
    initial_ksn: bytes


Request = ReadCard | Status | LoadKeys


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Reading:
    """A ``read`` answer: what the phone puts in its MPOS request."""

    scheme: Scheme
    ksn: bytes
    pin_block: bytes | None = dataclasses.field(repr=False)
    track: bytes = dataclasses.field(repr=False)


def _malformed(reason: str) -> ReaderLinkError:
    return ReaderLinkError(LinkError.MALFORMED, reason)


def _object(payload: bytes) -> dict[str, Any]:
    if len(payload) > MAX_FRAME_LEN:
        raise _malformed(f"frame longer than {MAX_FRAME_LEN} bytes")
    try:
        value = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _malformed(f"not a JSON object in UTF-8 (at byte {getattr(exc, 'pos', 0)})") from None
    if not isinstance(value, dict):
        raise _malformed("not a JSON object")
    return value


def _member(message: dict[str, Any], name: str, choices: tuple[str, ...] | None = None) -> str:
    value = message.get(name)
    if not isinstance(value, str) or (choices is not None and value not in choices):
        wanted = " | ".join(choices) if choices else "a string"
        raise _malformed(f"member {name!r} must be {wanted}")
    return value


def _hex(message: dict[str, Any], name: str, digits: int | None = None) -> bytes:
    value = _member(message, name)
    if not value or len(value) % 2 or not set(value) <= _HEX or (digits is not None and len(value) != digits):
        size = f"{digits} hex digits" if digits is not None else "hex digits, whole bytes"
        raise _malformed(f"member {name!r} must be {size}")
    return bytes.fromhex(value)


def _encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode("utf-8")


def encode_request(request: Request) -> bytes:
    match request:
        case ReadCard(card=card, pin=pin):
            return _encode({"op": "read", "card": card, "pin": pin})
        case Status():
            return _encode({"op": "status"})
        case LoadKeys(scheme=scheme, initial_key=key, initial_ksn=ksn):
            return _encode(
                {"op": "load", "scheme": scheme, "initial_key": key.hex().upper(), "initial_ksn": ksn.hex().upper()}
            )


def parse_request(payload: bytes) -> Request:
    """Raises :class:`ReaderLinkError` (``malformed``) naming what is wrong."""
    message = _object(payload)
    op = _member(message, "op", ("read", "status", "load"))
    if op == "read":
        card = _member(message, "card")
        if not card.isdigit() or not 12 <= len(card) <= 19:
            raise _malformed("member 'card' must be a PAN of 12 to 19 digits")
        pin: Any = _member(message, "pin", PIN_ENTRIES)
        return ReadCard(card, pin)
    if op == "status":
        return Status()
    scheme: Any = _member(message, "scheme", SCHEMES)
    return LoadKeys(
        scheme, _hex(message, "initial_key", KEY_HEX), _hex(message, "initial_ksn", INITIAL_KSN_HEX[scheme])
    )


def ok_answer(**members: Any) -> bytes:
    return _encode({"ok": True, **members})


def error_answer(error: ReaderLinkError) -> bytes:
    return _encode({"ok": False, "error": error.code.value, "reason": error.reason})


def reading_answer(reading: Reading) -> bytes:
    pin = reading.pin_block.hex().upper() if reading.pin_block is not None else None
    return ok_answer(
        scheme=reading.scheme, ksn=reading.ksn.hex().upper(), pin_block=pin, track=reading.track.hex().upper()
    )


def parse_answer(payload: bytes) -> dict[str, Any]:
    """An ``ok`` answer's members; a refusal raises :class:`ReaderLinkError` with the reader's code."""
    message = _object(payload)
    if message.get("ok") is True:
        return message
    try:
        code = LinkError(str(message.get("error")))
    except ValueError:
        raise _malformed("an answer that is neither ok nor a known error") from None
    raise ReaderLinkError(code, str(message.get("reason", "")))


def parse_reading(payload: bytes) -> Reading:
    message = parse_answer(payload)
    scheme: Any = _member(message, "scheme", SCHEMES)
    pin = message.get("pin_block")
    return Reading(
        scheme=scheme,
        ksn=_hex(message, "ksn"),
        pin_block=None if pin is None else _hex(message, "pin_block"),
        track=_hex(message, "track"),
    )
