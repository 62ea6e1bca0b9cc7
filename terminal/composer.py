"""The message composer, sans-IO: the request a terminal would send, with an engineer's edits, MAC'd again.

``compose`` asks the terminal's own session to build the request (so it is exactly what the terminal would
send: STAN, time, batch, PIN block under the PIK, MAC under the MAK), then applies :class:`Edits` — fields set
or removed, or a raw MAC — and MACs the result again unless told not to. ``rebuild`` starts instead from the
fields of a traced request (card data masked in traces: the card is resolved against the test cards, and the
STAN, time, date, batch, PIN block and MAC are made fresh). ``check_answer`` dissects the answer and says
whether its MAC verifies under the terminal's MAK.

A composed request is an experiment: it does not leave a reversal queued in the terminal (the terminal's own
transactions would otherwise send one before their next request).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any, Final, Literal

from acqkit.config import CardFixture
from terminal.session import FINANCIAL, TerminalSession
from wire.codec import decode_pos_body, encode_pos_body, encode_pos_body_with_mac, pos_body_mac, pos_mac_block
from wire.dissect import dissect_pos
from wire.errors import MessageEncodeError, WireError
from wire.fields import Field60
from wire.paycrypto import encrypt_pin_block
from wire.posframe import PosFrame
from wire.specs import POS_SPEC

MAC_FIELD: Final = "64"
MAC_LEN: Final = 8
PIN_BLOCK_FIELD: Final = "52"
#: ``--set`` accepts the MTI under these names besides the field numbers of the POS spec.
MTI_NAMES: Final = frozenset({"t", "mti"})
#: What ``compose`` can build: the terminal's financial kinds.
KINDS: Final = tuple(FINANCIAL)

MacVerdict = Literal["verifies", "fails", "absent"]


class ComposerError(ValueError):
    """An edit cannot be applied (unknown field, a value the field's format refuses, a bad raw MAC)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(f"field {field}: {message}" if field else message)
        self.field = field


def _field_key(name: str) -> str:
    key = name.strip().lower()
    if key in MTI_NAMES:
        return "t"
    if key not in POS_SPEC or key in ("h", "p", "1"):
        raise ComposerError(f"{name!r} is not a field of the POS link (2..64, or t for the MTI)")
    return key


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Edits:
    """Fields to set (number → value as ``acqsim decode --unmask`` shows it), fields to remove, a raw MAC."""

    set: Mapping[str, str] = dataclasses.field(default_factory=dict)
    unset: frozenset[str] = frozenset()
    raw_mac: bytes | None = None

    def __post_init__(self) -> None:
        if self.raw_mac is not None and len(self.raw_mac) != MAC_LEN:
            raise ComposerError(f"a raw MAC is {MAC_LEN} bytes ({2 * MAC_LEN} hex digits)", field=MAC_FIELD)

    @classmethod
    def parse(cls, assignments: Iterable[str] = (), removals: Iterable[str] = (), raw_mac: str | None = None) -> Edits:
        """From ``--set N=VALUE``, ``--unset N`` and ``--raw-mac HEX`` arguments."""
        values: dict[str, str] = {}
        for text in assignments:
            name, sep, value = text.partition("=")
            if not sep:
                raise ComposerError(f"--set takes FIELD=VALUE, not {text!r}")
            values[_field_key(name)] = value.strip()
        mac = None
        if raw_mac is not None:
            try:
                mac = bytes.fromhex(raw_mac)
            except ValueError:
                raise ComposerError("--raw-mac is not hex", field=MAC_FIELD) from None
        return cls(set=values, unset=frozenset(_field_key(n) for n in removals), raw_mac=mac)


def apply_edits(session: TerminalSession, payload: bytes, edits: Edits) -> bytes:
    """The frame with ``edits`` applied, MAC'd under the terminal's MAK when the original carried a MAC (and 64
    was not removed), or carrying ``edits.raw_mac`` as it is."""
    frame = PosFrame.parse(payload)
    fields = decode_pos_body(frame.body)
    had_mac = fields.pop(MAC_FIELD, None) is not None
    for key in edits.unset:
        if key == "t":
            raise ComposerError("the MTI cannot be removed", field="t")
        fields.pop(key, None)
    fields.update(edits.set)
    explicit_mac = fields.pop(MAC_FIELD, None)
    try:
        if edits.raw_mac is not None:
            body = encode_pos_body({**fields, MAC_FIELD: edits.raw_mac.hex().upper()})
        elif explicit_mac is not None:
            body = encode_pos_body({**fields, MAC_FIELD: explicit_mac})
        elif had_mac and MAC_FIELD not in edits.unset:
            body = encode_pos_body_with_mac(fields, session.mac)
        else:
            body = encode_pos_body(fields)
    except MessageEncodeError as exc:
        raise ComposerError(exc.reason, field=exc.field) from None
    return dataclasses.replace(frame, body=body).to_bytes()


def compose(
    session: TerminalSession, kind: str, card: CardFixture, *, amount: int = 0, pin: str | None = None, edits: Edits
) -> bytes:
    """The ``kind`` request the terminal would send for ``card``, with ``edits`` applied."""
    if kind not in FINANCIAL:
        raise ComposerError(f"unknown kind {kind!r}: one of {', '.join(KINDS)}")
    pending = session.state.pending_reversal
    payload = session.financial(kind, card, amount=amount, pin=pin)
    session.state.pending_reversal = pending
    return apply_edits(session, payload, edits)


def rebuild(session: TerminalSession, mti: str, traced: Mapping[str, str], card: CardFixture, *, edits: Edits) -> bytes:
    """A traced request made fresh for this terminal: new STAN, time, date and batch, the real test card, the
    card's PIN under the current PIK (when the traced request carried a PIN block), a new MAC; then ``edits``."""
    fields = {k: v for k, v in traced.items() if k != MAC_FIELD}
    now = session.clock()
    fields.update({"t": mti, "11": session.state.next_stan(), "12": now.strftime("%H%M%S")})
    fields["13"] = now.strftime("%m%d")
    fields["41"] = session.state.terminal_id
    fields["42"] = session.state.merchant_id
    if "2" in fields:
        fields["2"] = card.pan
    if "35" in fields:
        fields["35"] = card.track2
    if "60" in fields:
        fields["60"] = dataclasses.replace(Field60.parse(fields["60"]), batch=session.state.batch).encode()
    if PIN_BLOCK_FIELD in fields:
        fields[PIN_BLOCK_FIELD] = encrypt_pin_block(session._pik, card.pin, card.pan).hex().upper()
    try:
        body = encode_pos_body_with_mac(fields, session.mac)
    except MessageEncodeError as exc:
        raise ComposerError(exc.reason, field=exc.field) from None
    payload = PosFrame(tpdu=session.tpdu, header=session.header, body=body).to_bytes()
    return apply_edits(session, payload, edits)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class AnswerCheck:
    dissection: dict[str, Any]
    response_code: str
    mac: MacVerdict


def check_answer(session: TerminalSession, payload: bytes, *, unmask: bool = False) -> AnswerCheck:
    """The answer dissected (masked unless ``unmask``), its response code, and whether its MAC verifies."""
    dissection = dissect_pos(payload, unmask=unmask)
    body = PosFrame.parse(payload).body
    mac = pos_body_mac(body)
    verdict: MacVerdict = "absent"
    if mac is not None:
        try:
            verdict = "verifies" if session.mac(pos_mac_block(body)) == mac else "fails"
        except WireError:
            verdict = "fails"
    return AnswerCheck(dissection=dissection, response_code=dissection["fields"].get("39", ""), mac=verdict)
