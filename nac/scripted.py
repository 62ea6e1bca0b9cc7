"""The NAC's side of a rules file (``acqsim up --rules FILE``), sans-IO.

The NAC never decodes a body to route it; with rules in force it decodes each terminal request once, only to
match it (an undecodable body matches nothing and is routed as usual). A hit says what the shell does:

    answer        answer the terminal itself: the request's echoed fields, field 39 = the rule's code, MTI + 10,
                  no MAC (the NAC holds no key: the terminal sees an answer it cannot trust, as after a rogue
                  device on the line, and keeps its reversal)
    delay         hold the request ``delay_s``, then route it
    drop          route nothing: the terminal times out
    close         close the terminal's connection
    corrupt_mac   route it; the terminal's next answer arrives with its MAC's last byte flipped
    answer_twice  route it; the terminal's next answer is delivered twice
"""

from __future__ import annotations

import collections
from typing import Final

from acqkit.rules import ActionKind, Hit, RuleBook, corrupt_mac
from wire.codec import decode_pos_body, encode_pos_body
from wire.constants import ANSWER_ECHOED_FIELDS, response_mti
from wire.errors import WireError
from wire.posframe import PosFrame

#: Actions that change the terminal's next answer rather than the request.
ANSWER_EFFECTS: Final = frozenset({ActionKind.CORRUPT_MAC, ActionKind.ANSWER_TWICE})


class ScriptedNac:
    def __init__(self, book: RuleBook) -> None:
        self.book = book
        self._answer_effects: dict[int, collections.deque[ActionKind]] = collections.defaultdict(collections.deque)

    def on_request(self, terminal_id: int, payload: bytes) -> Hit | None:
        """The rule hit by this terminal request, if any (answer effects are remembered for its answer)."""
        try:
            fields = decode_pos_body(PosFrame.parse(payload).body)
        except WireError:
            return None
        hit = self.book.match(fields)
        if hit is not None and hit.action.kind in ANSWER_EFFECTS:
            self._answer_effects[terminal_id].append(hit.action.kind)
        return hit

    def on_answer(self, terminal_id: int, payload: bytes) -> list[bytes]:
        """What to deliver to the terminal for one answer: as it is, mangled, or twice."""
        effects = self._answer_effects.get(terminal_id)
        if not effects:
            return [payload]
        effect = effects.popleft()
        if not effects:
            del self._answer_effects[terminal_id]
        if effect is ActionKind.ANSWER_TWICE:
            return [payload, payload]
        return [corrupt_mac(payload)]

    def forget(self, terminal_id: int) -> None:
        """The terminal's connection closed: effects waiting for its answers go with it."""
        self._answer_effects.pop(terminal_id, None)


def scripted_answer(payload: bytes, code: str) -> bytes | None:
    """The answer a rule gives to a request: echoed fields, field 39 = ``code``, no MAC; ``None`` if the request
    cannot be answered (not decodable, or not a request)."""
    try:
        frame = PosFrame.parse(payload)
        fields = decode_pos_body(frame.body)
        answer = {"t": response_mti(fields["t"]), "39": code}
        answer.update({k: fields[k] for k in ANSWER_ECHOED_FIELDS if k in fields})
        return frame.answer(encode_pos_body(answer)).to_bytes()
    except (WireError, ValueError):
        return None
