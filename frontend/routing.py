"""Where a card's transactions go (a core rule, sans-IO; docs/scheme.md): the acquirer's own ledger (on-us), or
the scheme switch (off-us: the card's issuer is another bank).

:class:`SchemeRoute` is the front-end's BIN table: the prefixes of its own bank's cards, and those the switch
serves (empty: every other card). A card in neither is an unknown BIN, declined 14 — never a crash. Without a
``SchemeRoute`` (no switch configured) every card is on-us, as before. An off-us PIN is not verified here (the
issuer holds the PVK): the acquirer's HSM translates it from the terminal's TPK to the acquirer zone's ZPK (CA),
carried by the one scheme effect, :class:`frontend.effects.AskScheme`.
"""

from __future__ import annotations

import dataclasses
import enum

from wire.switchlink import DEFAULT_MCC


class Route(enum.Enum):
    ON_US = "on-us"
    SCHEME = "scheme"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SchemeRoute:
    on_us: tuple[str, ...]  # BIN prefixes of the acquirer's own cards
    zpk_under_lmk: str = dataclasses.field(repr=False)  # the acquirer zone's ZPK under the acquirer's LMK
    scheme: tuple[str, ...] = ()  # BIN prefixes the switch serves; empty: every card not on-us
    mcc: str = DEFAULT_MCC

    def route(self, pan: str) -> Route | None:
        if any(pan.startswith(prefix) for prefix in self.on_us):
            return Route.ON_US
        if not self.scheme or any(pan.startswith(prefix) for prefix in self.scheme):
            return Route.SCHEME
        return None


def route_of(scheme: SchemeRoute | None, pan: str) -> Route | None:
    """The route of ``pan``: on-us when no switch is configured."""
    return Route.ON_US if scheme is None else scheme.route(pan)
