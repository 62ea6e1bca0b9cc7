"""Field-by-field comparison of an answer with the recorded one, with ignore rules.

Both sides are compared as dissected (PANs masked, PIN block hidden), so recorded traces — which never hold
clear card data — compare like raw captures do.
"""

from __future__ import annotations

import dataclasses
from typing import Final

#: Fields that always change between runs: STAN, local time/date, RRN, authorisation code, MAC.
DEFAULT_IGNORED: Final = frozenset({"11", "12", "13", "15", "37", "38", "64"})


@dataclasses.dataclass(frozen=True, slots=True)
class FieldDifference:
    field: str
    recorded: str | None
    replayed: str | None


def diff_fields(
    recorded: dict[str, str], replayed: dict[str, str], ignored: frozenset[str] = DEFAULT_IGNORED
) -> list[FieldDifference]:
    differences = []
    for field in sorted(set(recorded) | set(replayed), key=lambda k: (len(k), k)):
        if field in ignored:
            continue
        if recorded.get(field) != replayed.get(field):
            differences.append(FieldDifference(field, recorded.get(field), replayed.get(field)))
    return differences


def parse_ignore(text: str | None, *, keep_defaults: bool = True) -> frozenset[str]:
    chosen = {f.strip() for f in (text or "").split(",") if f.strip()}
    return frozenset(chosen | (DEFAULT_IGNORED if keep_defaults else set()))
