"""A frame the front-end received, as both of its shells hold it: :class:`Begun` (parsed, its body decoded, its
rule matched: :meth:`frontend.server.Frontend.begin`), and :class:`ClosedByRule`, raised when a rule closes the
connection the frame came on."""

from __future__ import annotations

import dataclasses

from acqkit.rules import Hit
from frontend.core import Reply
from wire.posframe import PosFrame
from wire.posmessage import PosMessage


class ClosedByRule(Exception):
    """A rules file said to close the connection this request came on."""


@dataclasses.dataclass(frozen=True, slots=True)
class Begun:
    """A frame read: parsed, its body decoded (or the reply that drops it), its rule."""

    frame: PosFrame
    request: PosMessage | Reply
    correlation: str | None
    hit: Hit | None
