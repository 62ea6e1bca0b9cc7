"""Field 55 (ICC data) as acqsim's messages carry it: which data objects, in which order, of which length
(PROTOCOL.md §7), built on the BER-TLV of :mod:`wire.tlv`.

- a chip 0100/0200 and its chip batch upload (0320): :data:`REQUEST_TAGS`;
- the reversal of a chip transaction (0400): :data:`REVERSAL_TAGS`;
- the issuer-script result advice (0620): :data:`SCRIPT_ADVICE_TAGS`;
- the answer (0110/0210): ``91`` = ARPC (8) ‖ ARC (2 ASCII), and issuer scripts in ``71`` / ``72`` templates
  (each: ``9F18`` script id (4) and one or more ``86`` commands).

:func:`parse_icc` refuses a repeated tag, a value of the wrong length and a missing required tag, each with
the tag and its byte offset in field 55 (:class:`~wire.errors.MessageDecodeError`, field ``55``) and never a
value. :func:`arqc_input` is the data the ARQC covers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Final

from wire.errors import MessageDecodeError, MessageEncodeError
from wire.tlv import ICC_FIELD, encode_tlv, parse_tlv_at

ARQC_TAG: Final = "9F26"
CID_TAG: Final = "9F27"
IAD_TAG: Final = "9F10"
UN_TAG: Final = "9F37"
ATC_TAG: Final = "9F36"
TVR_TAG: Final = "95"
PSN_TAG: Final = "5F34"
TRACK2_TAG: Final = "57"
ISSUER_AUTH_TAG: Final = "91"
SCRIPT_BEFORE_TAG: Final = "71"
SCRIPT_AFTER_TAG: Final = "72"
SCRIPT_ID_TAG: Final = "9F18"
SCRIPT_COMMAND_TAG: Final = "86"
SCRIPT_RESULTS_TAG: Final = "DF31"

#: A chip 0100/0200 (and its 0320 batch upload), in this order.
REQUEST_TAGS: Final = (
    "9F26", "9F27", "9F10", "9F37", "9F36", "95", "9A", "9C", "9F02", "5F2A", "82", "9F1A", "9F03", "9F33",
    "9F34", "9F35", "9F1E", "84", "9F09", "9F41", "9F63",
)  # fmt: skip
#: The objects a request must carry: the ARQC, what it covers, and the CID.
REQUEST_REQUIRED: Final = frozenset(
    {"9F26", "9F27", "9F10", "9F37", "9F36", "95", "9A", "9C", "9F02", "5F2A", "82", "9F1A", "9F03"}
)
REVERSAL_TAGS: Final = ("95", "9F1E", "9F10", "9F36", "DF31")
REVERSAL_REQUIRED: Final = frozenset({"95", "9F10", "9F36"})
SCRIPT_ADVICE_TAGS: Final = ("9F33", "95", "9F37", "9F1E", "9F10", "9F26", "9F36", "82", "DF31", "9F1A", "9A")
SCRIPT_ADVICE_REQUIRED: Final = frozenset({"95", "9F10", "9F26", "9F36", "DF31"})
ANSWER_TAGS: Final = ("91", "71", "72")

#: The ARQC covers these objects' values, in this order, then the CVR (PROTOCOL.md §7).
ARQC_INPUT_TAGS: Final = ("9F02", "9F03", "9F1A", "95", "5F2A", "9A", "9C", "9F37", "82", "9F36")
#: Fixed value lengths (bytes); other objects may vary.
FIXED_LENGTHS: Final[Mapping[str, int]] = {
    "9F26": 8, "9F27": 1, "9F37": 4, "9F36": 2, "95": 5, "9A": 3, "9C": 1, "9F02": 6, "5F2A": 2, "82": 2,
    "9F1A": 2, "9F03": 6, "9F33": 3, "9F34": 3, "9F35": 1, "9F1E": 8, "9F09": 2, "5F34": 1, "91": 10,
    "9F18": 4,
}  # fmt: skip
#: 9F10 carries the CVR in its bytes 4–7 (PBOC / Visa CVN layout), so it is at least 7 bytes; at most 32.
IAD_MIN_LEN: Final = 7
IAD_MAX_LEN: Final = 32
CVR_SLICE: Final = slice(3, 7)
#: Field 55 is b..255 on the POS link.
MAX_ICC_LEN: Final = 255
ARPC_LEN: Final = 8
#: DF31: one result byte (high nibble 2 = done, 1 = failed; low nibble = the failing command's number) ‖ id.
SCRIPT_RESULT_LEN: Final = 5
SCRIPT_DONE: Final = 0x20
SCRIPT_FAILED: Final = 0x10


def build_icc(values: Mapping[str, bytes], order: Sequence[str]) -> bytes:
    """Field 55 from ``values``: the objects of ``order`` that are present, in that order."""
    unknown = set(values) - set(order)
    if unknown:
        raise MessageEncodeError(f"tags {sorted(unknown)} do not belong in this message's field 55", field=ICC_FIELD)
    for tag, value in values.items():
        _check_length(tag, value, 0, error=MessageEncodeError)
    data = encode_tlv((tag, values[tag]) for tag in order if tag in values)
    if len(data) > MAX_ICC_LEN:
        raise MessageEncodeError(f"ICC data is {len(data)} bytes, over {MAX_ICC_LEN}", field=ICC_FIELD)
    return data


def _check_length(tag: str, value: bytes, offset: int, *, error: type[MessageDecodeError | MessageEncodeError]) -> None:
    want = FIXED_LENGTHS.get(tag)
    if want is not None and len(value) != want:
        raise error(f"tag {tag} is {len(value)} bytes, not {want}", field=ICC_FIELD, offset=offset)
    if tag == SCRIPT_RESULTS_TAG and (not value or len(value) % SCRIPT_RESULT_LEN):
        raise error(f"tag {tag} is {len(value)} bytes, not whole {SCRIPT_RESULT_LEN}-byte results", field=ICC_FIELD,
                    offset=offset)  # fmt: skip
    if tag == IAD_TAG and not IAD_MIN_LEN <= len(value) <= IAD_MAX_LEN:
        raise error(f"tag {tag} is {len(value)} bytes, not {IAD_MIN_LEN}–{IAD_MAX_LEN}", field=ICC_FIELD, offset=offset)


def parse_icc(data: bytes, required: frozenset[str] = frozenset()) -> dict[str, bytes]:
    """The data objects of field 55 by tag; each checked for repetition and length, ``required`` for presence."""
    if len(data) > MAX_ICC_LEN:
        raise MessageDecodeError(f"ICC data is {len(data)} bytes, over {MAX_ICC_LEN}", field=ICC_FIELD, offset=0)
    values: dict[str, bytes] = {}
    for tag, value, offset in parse_tlv_at(data):
        if tag in values:
            raise MessageDecodeError(f"tag {tag} appears twice", field=ICC_FIELD, offset=offset)
        _check_length(tag, value, offset, error=MessageDecodeError)
        values[tag] = value
    missing = sorted(required - set(values))
    if missing:
        raise MessageDecodeError(f"missing tags {missing}", field=ICC_FIELD, offset=len(data))
    return values


def cvr(iad: bytes) -> bytes:
    """The card verification results inside the issuer application data (9F10 bytes 4–7)."""
    if not IAD_MIN_LEN <= len(iad) <= IAD_MAX_LEN:
        raise MessageDecodeError(f"tag {IAD_TAG} is {len(iad)} bytes", field=ICC_FIELD)
    return iad[CVR_SLICE]


def arqc_input(values: Mapping[str, bytes]) -> bytes:
    """What the ARQC covers: 9F02 ‖ 9F03 ‖ 9F1A ‖ 95 ‖ 5F2A ‖ 9A ‖ 9C ‖ 9F37 ‖ 82 ‖ 9F36 ‖ CVR."""
    missing = [tag for tag in (*ARQC_INPUT_TAGS, IAD_TAG) if tag not in values]
    if missing:
        raise MessageDecodeError(f"missing tags {missing}", field=ICC_FIELD)
    return b"".join(values[tag] for tag in ARQC_INPUT_TAGS) + cvr(values[IAD_TAG])


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class IssuerScript:
    """One issuer script: its id and its commands (APDUs, each an ``86`` object)."""

    script_id: bytes
    commands: tuple[bytes, ...]

    def __post_init__(self) -> None:
        if len(self.script_id) != FIXED_LENGTHS[SCRIPT_ID_TAG] or not self.commands:
            raise MessageEncodeError("an issuer script has a 4-byte id and at least one command", field=ICC_FIELD)

    def encode(self) -> bytes:
        return encode_tlv([(SCRIPT_ID_TAG, self.script_id), *((SCRIPT_COMMAND_TAG, c) for c in self.commands)])


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class IssuerAnswer:
    """The answer's field 55: ARPC ‖ ARC in 91, and scripts to run before (71) or after (72) the 2nd AC."""

    arpc: bytes
    arc: str
    before: tuple[IssuerScript, ...] = ()
    after: tuple[IssuerScript, ...] = ()

    def __post_init__(self) -> None:
        if len(self.arpc) != ARPC_LEN or len(self.arc) != 2 or not self.arc.isascii():
            raise MessageEncodeError("91 is an 8-byte ARPC and a 2-character ARC", field=ICC_FIELD)

    def encode(self) -> bytes:
        items = [(ISSUER_AUTH_TAG, self.arpc + self.arc.encode("ascii"))]
        items += [(SCRIPT_BEFORE_TAG, script.encode()) for script in self.before]
        items += [(SCRIPT_AFTER_TAG, script.encode()) for script in self.after]
        data = encode_tlv(items)
        if len(data) > MAX_ICC_LEN:
            raise MessageEncodeError(f"ICC data is {len(data)} bytes, over {MAX_ICC_LEN}", field=ICC_FIELD)
        return data

    @classmethod
    def parse(cls, data: bytes) -> IssuerAnswer:
        arpc: bytes | None = None
        arc = ""
        scripts: dict[str, list[IssuerScript]] = {SCRIPT_BEFORE_TAG: [], SCRIPT_AFTER_TAG: []}
        for tag, value, offset in parse_tlv_at(data):
            if tag == ISSUER_AUTH_TAG:
                if arpc is not None:
                    raise MessageDecodeError(f"tag {tag} appears twice", field=ICC_FIELD, offset=offset)
                _check_length(tag, value, offset, error=MessageDecodeError)
                arpc, arc = value[:ARPC_LEN], value[ARPC_LEN:].decode("latin-1")
            elif tag in scripts:
                scripts[tag].append(_parse_script(value, offset))
            else:
                raise MessageDecodeError(f"tag {tag} does not belong in an answer", field=ICC_FIELD, offset=offset)
        if arpc is None:
            raise MessageDecodeError(f"missing tag {ISSUER_AUTH_TAG}", field=ICC_FIELD, offset=len(data))
        try:
            return cls(
                arpc=arpc, arc=arc, before=tuple(scripts[SCRIPT_BEFORE_TAG]), after=tuple(scripts[SCRIPT_AFTER_TAG])
            )
        except MessageEncodeError as exc:
            raise MessageDecodeError(exc.reason, field=ICC_FIELD, offset=0) from None


def _parse_script(template: bytes, offset: int) -> IssuerScript:
    script_id: bytes | None = None
    commands: list[bytes] = []
    try:
        inner = parse_tlv_at(template)
    except MessageDecodeError as exc:
        raise MessageDecodeError(f"issuer script: {exc.reason}", field=ICC_FIELD, offset=offset) from None
    for tag, value, _ in inner:
        if tag == SCRIPT_ID_TAG and script_id is None and len(value) == FIXED_LENGTHS[SCRIPT_ID_TAG]:
            script_id = value
        elif tag == SCRIPT_COMMAND_TAG and value:
            commands.append(value)
        else:
            raise MessageDecodeError(f"issuer script holds a bad {tag}", field=ICC_FIELD, offset=offset)
    if script_id is None or not commands:
        raise MessageDecodeError("issuer script lacks its id or commands", field=ICC_FIELD, offset=offset)
    return IssuerScript(script_id=script_id, commands=tuple(commands))


def script_result(script_id: bytes, failed_command: int | None = None) -> bytes:
    """One DF31 entry: done, or failed at command number ``failed_command`` (1–15)."""
    status = SCRIPT_DONE if failed_command is None else SCRIPT_FAILED | min(failed_command, 0x0F)
    return bytes([status]) + script_id
