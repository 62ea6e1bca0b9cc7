"""The switch's members: who may send to it, where each issuer's host listens, and each zone's keys.

Each member shares two zone keys with the switch: a ZAK that MACs the switch link both ways and a ZPK that
PIN blocks cross the zone under. The switch holds both under its own HSM's LMK (``U`` + 32 hex); the member
holds the same clear keys under its own LMK (exchanged under a ZMK: HSM A0 mode 1, then A6 at the other end).
"""

from __future__ import annotations

import dataclasses

from hsm_sim.client import is_key_under_lmk
from wire.switchlink import INSTITUTION_ID_LEN


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Member:
    institution_id: str  # 8 digits: institution 4 ‖ region 4
    name: str
    zak: str = dataclasses.field(repr=False)  # the zone's MAC key under the switch's LMK
    zpk: str = dataclasses.field(repr=False)  # the zone's PIN key under the switch's LMK
    #: Where the member's issuer host serves the switch link (``None``: an acquirer only).
    issuer_host: str | None = None
    issuer_port: int | None = None

    def __post_init__(self) -> None:
        if len(self.institution_id) != INSTITUTION_ID_LEN or not self.institution_id.isdigit():
            raise ValueError(f"member institution id must be {INSTITUTION_ID_LEN} digits")
        for name, key in (("zak", self.zak), ("zpk", self.zpk)):
            if not is_key_under_lmk(key):
                raise ValueError(f"member {self.institution_id}: {name} must be U + 32 hex (under the switch's LMK)")
        if (self.issuer_host is None) != (self.issuer_port is None):
            raise ValueError(f"member {self.institution_id}: give both issuer_host and issuer_port, or neither")

    @property
    def issues(self) -> bool:
        return self.issuer_host is not None
