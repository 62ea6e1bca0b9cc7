"""The merchant-platform link: smart POS, cash register and back office ↔ the merchant platform (docs/smartpos.md).

Frames as on every acqsim link; each payload is one TLV message (:mod:`wire.tlvlink`). Amounts are minor
units. A request may be **signed** (:func:`sign`; the platform may require it): ``KI`` the signer's key id (a
terminal id), ``TS`` its clock (Unix seconds), ``NC`` a fresh nonce (16 hex), then ``HM`` — the first 8 bytes
of HMAC-SHA-256 (16 hex) under the signer's merchant-link key over the encoded message without ``HM``
(:func:`signing_bytes`); refusals are the :class:`AuthResult` codes. Lists (the message centre) come back as
up to ``MAX_LISTED`` tags ``N1``…``N9``, newest first, each ``id|kind|text``. Card members are found by the
card's fingerprint (``FP``: HMAC-SHA-256 under the data key, 64 hex digits), never by a card number.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final

from wire.ascii_tlv import encode_ascii_tlv
from wire.errors import MessageDecodeError
from wire.paycrypto import MacAlgorithm, compute_mac, with_odd_parity
from wire.tlvlink import COMMON_TAGS, ERROR_KIND, KIND_ERROR, TAG_KIND, KindSpec, LinkMessage, LinkSpec, TagSpec

MERCHANT_LINK_NAME: Final = "merchant link"
MAX_LISTED: Final = 9
LIST_TAGS: Final = tuple(f"N{n}" for n in range(1, MAX_LISTED + 1))
#: ``PY`` values of a recorded sale.
METHODS: Final = ("CARD", "QR", "CASH")
ITEM_SEPARATOR: Final = ";"
PART_SEPARATOR: Final = "*"

#: ``IT``: items as (name, quantity, unit price in minor units).
Items = tuple[tuple[str, int, int], ...]


def encode_items(items: Items) -> str:
    """``(("coffee", 2, 1200),)`` → ``"coffee*2*1200"``. Names may not hold ``;`` or ``*``."""
    for name, _, _ in items:
        if ITEM_SEPARATOR in name or PART_SEPARATOR in name:
            raise ValueError(f"an item name may not contain {ITEM_SEPARATOR!r} or {PART_SEPARATOR!r}")
    return ITEM_SEPARATOR.join(f"{name}{PART_SEPARATOR}{qty}{PART_SEPARATOR}{price}" for name, qty, price in items)


def parse_items(text: str) -> Items:
    """Raises :class:`MessageDecodeError` (field ``IT``, character offset of the bad item)."""
    items = []
    at = 0
    for part in text.split(ITEM_SEPARATOR) if text else []:
        pieces = part.split(PART_SEPARATOR)
        if len(pieces) != 3 or not pieces[0] or not pieces[1].isdigit() or not pieces[2].isdigit():
            raise MessageDecodeError("an item is name*quantity*unit price", field="IT", offset=at)
        items.append((pieces[0], int(pieces[1]), int(pieces[2])))
        at += len(part) + 1
    return tuple(items)


#: ``MK`` values of a notice.
NOTICE_KINDS: Final = ("SETTLEMENT", "PARAMETERS", "CHARGEBACK", "BOOKING", "OTHER")
NOTICE_SETTLEMENT: Final = "SETTLEMENT"
NOTICE_PARAMETERS: Final = "PARAMETERS"
NOTICE_CHARGEBACK: Final = "CHARGEBACK"


#: The authentication tags, in the order :func:`sign` appends them (``HM`` last).
TAG_KEY_ID: Final = "KI"
TAG_TIMESTAMP: Final = "TS"
TAG_NONCE: Final = "NC"
TAG_MAC: Final = "HM"
AUTH_TAGS: Final = (TAG_KEY_ID, TAG_TIMESTAMP, TAG_NONCE, TAG_MAC)
NONCE_HEX_LEN: Final = 16
MAC_HEX_LEN: Final = 16
LINK_MAC: Final = MacAlgorithm.HMAC_SHA256_64
#: The TEST derivation of a terminal's merchant-link key from its TEST TMK (the key ceremony forms the same key
#: in the HSM): a real estate loads a separate random key per terminal.
_TEST_LINK_KEY_LABEL: Final = b"acqsim merchant link key v1 TEST"
LINK_KEY_LEN: Final = 16


class AuthResult:
    """``RC`` of a request the platform refuses to authenticate (the link's own codes)."""

    UNSIGNED = "S1"  # KI, TS, NC or HM missing
    UNKNOWN_KEY = "S2"  # no merchant-link key for KI
    BAD_MAC = "S3"  # HM does not verify under KI's key
    REPLAYED = "S4"  # this nonce was seen already from KI within the window
    STALE = "S5"  # TS too far from the platform's clock


def signing_bytes(message: LinkMessage) -> bytes:
    """What ``HM`` is computed over: the message encoded as sent (``MT`` first, tags in order), without ``HM``."""
    items = ((TAG_KIND, message.kind), *((tag, value) for tag, value in message.values if tag != TAG_MAC))
    return encode_ascii_tlv(items, field=MERCHANT_LINK_NAME).encode("ascii")


def stamped(message: LinkMessage, *, key_id: str, now: float, nonce: str) -> LinkMessage:
    """``message`` with ``KI``, ``TS`` and ``NC`` appended (any earlier authentication tags dropped): ready for
    its MAC (:func:`with_mac`), computed here or by an HSM over :func:`signing_bytes`."""
    kept = tuple((tag, value) for tag, value in message.values if tag not in AUTH_TAGS)
    stamp = ((TAG_KEY_ID, key_id), (TAG_TIMESTAMP, str(int(now))), (TAG_NONCE, nonce))
    return LinkMessage(message.kind, (*kept, *stamp))


def with_mac(message: LinkMessage, mac: bytes) -> LinkMessage:
    return LinkMessage(message.kind, (*message.values, (TAG_MAC, mac.hex().upper())))


def sign(message: LinkMessage, *, key_id: str, key: bytes, now: float, nonce: str) -> LinkMessage:
    """``message`` with ``KI``, ``TS``, ``NC`` and ``HM`` appended (any earlier ones replaced), under a clear
    key (a terminal's)."""
    unsigned = stamped(message, key_id=key_id, now=now, nonce=nonce)
    return with_mac(unsigned, compute_mac(LINK_MAC, key, signing_bytes(unsigned)))


def derive_test_link_key(tmk_hex: str) -> bytes:
    """The TEST merchant-link key of the terminal whose TEST TMK is ``tmk_hex`` (double length, odd parity)."""
    derived = hmac.new(bytes.fromhex(tmk_hex), _TEST_LINK_KEY_LABEL, hashlib.sha256).digest()[:LINK_KEY_LEN]
    return with_odd_parity(derived)


class MerchantKind:
    COUPON_ISSUE = "CPIS"
    COUPON_REDEEM = "CPRD"
    VOUCHER_SELL = "GBSL"
    VOUCHER_VERIFY = "GBVF"
    VOUCHER_SETTLE = "GBST"
    BOOKING_NEW = "BKNW"
    BOOKING_PAID = "BKPA"
    BOOKING_DONE = "BKDN"
    BOOKING_CANCEL = "BKCN"
    NOTICE_PUSH = "MSPU"
    NOTICE_LIST = "MSLS"
    MEMBER_JOIN = "MBNW"
    MEMBER_FIND = "MBFD"
    MEMBER_POINTS = "MBPT"
    SALE = "SALE"
    ERROR = KIND_ERROR


_K = MerchantKind
MERCHANT_LINK: Final = LinkSpec(
    MERCHANT_LINK_NAME,
    tags={
        **COMMON_TAGS,
        **{tag: TagSpec("a listed notice: id|kind|text", 160) for tag in LIST_TAGS},
        "MI": TagSpec("merchant id", 15, min_len=15),
        "TI": TagSpec("terminal id", 8, min_len=8),
        "AM": TagSpec("amount in minor units", 12, digits=True),
        "DA": TagSpec("discount in minor units", 12, digits=True),
        "MS": TagSpec("minimum spend in minor units", 12, digits=True),
        "QE": TagSpec("lifetime in seconds", 8, digits=True),
        "CP": TagSpec("coupon code", 16),
        "GV": TagSpec("group-buy voucher code", 16),
        "ER": TagSpec("the till's or terminal's reference", 20),
        "NM": TagSpec("name (deal, guest, item)", 40),
        "CN": TagSpec("count", 6, digits=True),
        "BK": TagSpec("booking number", 16),
        "SL": TagSpec("booked slot, YYYY-MM-DDTHH:MM", 16, min_len=16),
        "AC": TagSpec("authorisation code of the pre-authorisation", 6, min_len=6),
        "ST": TagSpec("terminal's STAN", 6, digits=True, min_len=6),
        "MK": TagSpec("notice kind", 12),
        "ID": TagSpec("notice number", 10, digits=True),
        "NK": TagSpec("notice key: the sender's id for one notice (a repeat is answered, not stored again)", 40),
        "PH": TagSpec("member's phone number", 15, digits=True, min_len=6),
        "FP": TagSpec("card fingerprint (HMAC-SHA-256, hex)", 64, min_len=64),
        "MB": TagSpec("member number", 16),
        "PT": TagSpec("points", 9, digits=True),
        "PR": TagSpec("points to redeem", 9, digits=True),
        "PY": TagSpec("method: CARD, QR or CASH", 4, min_len=2),
        "IT": TagSpec("items: name*qty*unit price;…", 900),
        "AT": TagSpec("when, Unix seconds", 10, digits=True),
        "ON": TagSpec("state", 12),
        TAG_KEY_ID: TagSpec("signer's key id (terminal id)", 8, min_len=8),
        TAG_TIMESTAMP: TagSpec("signer's clock, Unix seconds", 10, digits=True),
        TAG_NONCE: TagSpec("nonce, hex", NONCE_HEX_LEN, min_len=NONCE_HEX_LEN),
        TAG_MAC: TagSpec("HMAC-SHA-256/64 of the request, hex", MAC_HEX_LEN, min_len=MAC_HEX_LEN),
    },
    kinds={
        _K.COUPON_ISSUE: KindSpec("issue a coupon", frozenset({"MI", "DA"}), frozenset({"CP"})),
        _K.COUPON_REDEEM: KindSpec(
            "redeem a coupon on a basket", frozenset({"MI", "CP", "AM", "ER"}), frozenset({"DA", "AM"})
        ),
        _K.VOUCHER_SELL: KindSpec(
            "the platform sells a voucher to a consumer", frozenset({"MI", "NM", "AM"}), frozenset({"GV"})
        ),
        _K.VOUCHER_VERIFY: KindSpec(
            "verify and use a group-buy voucher", frozenset({"MI", "GV", "ER"}), frozenset({"NM", "AM"})
        ),
        _K.VOUCHER_SETTLE: KindSpec("settle verified vouchers", frozenset({"MI"}), frozenset({"AM", "CN"})),
        _K.BOOKING_NEW: KindSpec("book a slot", frozenset({"MI", "SL", "NM", "AM"}), frozenset({"BK"})),
        _K.BOOKING_PAID: KindSpec("the deposit's pre-authorisation", frozenset({"BK", "AC", "ST"})),
        _K.BOOKING_DONE: KindSpec("the guest came: completion", frozenset({"BK", "AM"})),
        _K.BOOKING_CANCEL: KindSpec("cancel a booking", frozenset({"BK"})),
        _K.NOTICE_PUSH: KindSpec(
            "push a notice to a merchant's terminals", frozenset({"MI", "MK", "TX"}), frozenset({"ID"})
        ),
        _K.NOTICE_LIST: KindSpec("a terminal's notices, newest first", frozenset({"MI"}), frozenset({"CN"})),
        _K.MEMBER_JOIN: KindSpec("enrol a member", frozenset({"MI", "PH"}), frozenset({"MB"})),
        _K.MEMBER_FIND: KindSpec("find a member by PH or FP", frozenset({"MI"}), frozenset({"MB", "PT"})),
        _K.MEMBER_POINTS: KindSpec("earn (AM) or redeem (PR) points", frozenset({"MI", "MB"}), frozenset({"PT"})),
        _K.SALE: KindSpec("record a sale for analytics", frozenset({"MI", "TI", "ER", "AM", "PY"})),
        _K.ERROR: ERROR_KIND,
    },
)
