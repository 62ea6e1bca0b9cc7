"""Messages of acqsim's TLV links: one length-prefixed frame carries one ASCII TLV message (:mod:`wire.ascii_tlv`).

A message names its kind in tag ``MT`` (4 letters); an answer is the request's kind with a result in ``RC``
(an ISO 8583 response code, PROTOCOL.md §3a, or one the link documents). Each link is data — a
:class:`LinkSpec` lists every tag (its meaning, digits or text, longest value) and every kind (the tags a
request and an answer must carry) — like a pyiso8583 spec. Decoding checks the whole message against it: an
unknown kind or tag, a missing tag or a bad value raises :class:`~wire.errors.MessageDecodeError` naming the
link, the tag and the offset, so a server can answer a clear error and carry on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Final

from wire.ascii_tlv import TlvItems, encode_ascii_tlv, parse_ascii_tlv_bytes
from wire.errors import MessageDecodeError, MessageEncodeError

TAG_KIND: Final = "MT"
TAG_RESULT: Final = "RC"
TAG_TEXT: Final = "TX"
KIND_LEN: Final = 4
#: The answer to a frame a server could not read: ``RC`` 30 (format error) and ``TX`` naming tag and offset.
KIND_ERROR: Final = "ERRR"
FORMAT_ERROR: Final = "30"
#: Results after which an answer carries all its kind's answer tags (approved; in progress). A refusal
#: carries ``RC`` and, if it likes, ``TX``.
SUCCESS_RESULTS: Final = frozenset({"00", "09"})


@dataclasses.dataclass(frozen=True, slots=True)
class TagSpec:
    meaning: str
    max_len: int
    digits: bool = False  # only 0-9 (amounts, STANs, dates, codes)
    min_len: int = 1


@dataclasses.dataclass(frozen=True, slots=True)
class KindSpec:
    meaning: str
    request: frozenset[str]
    #: What an answer with a result in ``SUCCESS_RESULTS`` must carry besides ``RC``.
    answer: frozenset[str] = frozenset()


@dataclasses.dataclass(frozen=True, slots=True)
class LinkSpec:
    name: str
    tags: Mapping[str, TagSpec]
    kinds: Mapping[str, KindSpec]


#: Tags every link has.
COMMON_TAGS: Final[dict[str, TagSpec]] = {
    TAG_KIND: TagSpec("message kind", KIND_LEN, min_len=KIND_LEN),
    TAG_RESULT: TagSpec("result: a response code", 2, min_len=2),
    TAG_TEXT: TagSpec("result in words", 120),
}


#: Every link has it: ``ERRR`` exists only as an answer.
ERROR_KIND: Final = KindSpec("answer to an unreadable frame", frozenset({TAG_RESULT}), frozenset({TAG_RESULT}))


@dataclasses.dataclass(frozen=True, slots=True)
class LinkMessage:
    """One message: its kind and its other tags' values (``RC`` present on answers)."""

    kind: str
    values: TlvItems = ()

    @classmethod
    def of(cls, kind: str, **values: str | int | None) -> LinkMessage:
        """``LinkMessage.of("SALE", AM=1234, ER="r1")``: ``None`` values are left out, ints written as digits."""
        return cls(kind, tuple((tag, str(value)) for tag, value in values.items() if value is not None))

    def get(self, tag: str) -> str | None:
        return next((value for name, value in self.values if name == tag), None)

    def __getitem__(self, tag: str) -> str:
        value = self.get(tag)
        if value is None:
            raise KeyError(tag)
        return value

    @property
    def result(self) -> str | None:
        return self.get(TAG_RESULT)

    @property
    def is_answer(self) -> bool:
        return self.result is not None

    def answer(self, result: str, **values: str | int | None) -> LinkMessage:
        """The answer to this request: same kind, ``RC`` = ``result``."""
        return LinkMessage.of(self.kind, RC=result, **values)

    def as_dict(self) -> dict[str, str]:
        return {TAG_KIND: self.kind, **dict(self.values)}


def _check_value(link: LinkSpec, tag: str, value: str) -> str | None:
    spec = link.tags.get(tag)
    if spec is None:
        return f"unknown tag {tag}"
    if not spec.min_len <= len(value) <= spec.max_len:
        return f"{tag} ({spec.meaning}) must be {spec.min_len}..{spec.max_len} characters"
    if spec.digits and not value.isdigit():
        return f"{tag} ({spec.meaning}) must be digits"
    return None


def _check(link: LinkSpec, kind: str, values: TlvItems, error: type[MessageDecodeError | MessageEncodeError]) -> None:
    kind_spec = link.kinds.get(kind)
    if kind_spec is None:
        raise error(f"unknown message kind {kind!r}" if kind.isalnum() else "unknown message kind", field=TAG_KIND)
    for tag, value in values:
        if tag == TAG_KIND:
            raise error("MT given twice", field=TAG_KIND)
        if (problem := _check_value(link, tag, value)) is not None:
            raise error(problem, field=tag)
    present = {tag for tag, _ in values}
    result = next((value for tag, value in values if tag == TAG_RESULT), None)
    if result is None:
        required = kind_spec.request
    else:
        required = kind_spec.answer if result in SUCCESS_RESULTS else frozenset({TAG_RESULT})
    missing = sorted(required - present)
    if missing:
        side = "answer" if TAG_RESULT in present else "request"
        raise error(f"{kind} {side} lacks {', '.join(missing)}", field=missing[0])


def error_answer(error: MessageDecodeError) -> LinkMessage:
    """``ERRR`` for a frame that did not decode; the text names tag and offset, never a value."""
    return LinkMessage.of(KIND_ERROR, RC=FORMAT_ERROR, TX=str(error)[: COMMON_TAGS[TAG_TEXT].max_len])


def encode_message(message: LinkMessage, link: LinkSpec) -> bytes:
    """The frame payload for ``message``; raises :class:`MessageEncodeError` if it breaks ``link``'s spec."""
    _check(link, message.kind, message.values, MessageEncodeError)
    return encode_ascii_tlv(((TAG_KIND, message.kind), *message.values), field=link.name).encode("ascii")


def decode_message(payload: bytes, link: LinkSpec) -> LinkMessage:
    """The message in a frame's payload; raises :class:`MessageDecodeError` (tag as ``field``, or the link's
    name with a character offset when the TLV itself is malformed)."""
    items = parse_ascii_tlv_bytes(payload, field=link.name)
    if not items or items[0][0] != TAG_KIND:
        raise MessageDecodeError("a message starts with its kind (MT)", field=TAG_KIND, offset=0)
    kind = items[0][1]
    values = items[1:]
    _check(link, kind, values, MessageDecodeError)
    return LinkMessage(kind, values)
