"""The switch's configuration file (TOML), for ``acqsim scheme serve --config FILE`` (docs/scheme.md).

    switch_id = "00010000"
    listen = "127.0.0.1:7100"
    hsm = "127.0.0.1:1510"              # the switch's own HSM (its LMK holds every member's zone keys)
    journal = "switch-journal.sqlite3"  # relative to the file's folder
    issuer_timeout_s = 3.0
    stand_in_limit = 10000              # fen; leave out to decline 91 whenever an issuer is silent

    [[members]]
    institution_id = "48009999"
    name = "ACQSIM TEST ACQUIRER"
    zak = "U…"                          # the zone's ZAK and ZPK under the switch's LMK
    zpk = "U…"
    issuer = "127.0.0.1:7201"           # where its issuer host listens (leave out for an acquirer only)

    [[bins]]
    prefix = "623050"
    issuer_id = "63050000"
    card_type = "D"                     # D debit, C credit

An unknown key, a missing one or a bad value is a :class:`acqkit.config.ConfigError` naming the file and key.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from acqkit.config import ConfigError, Endpoint
from scheme.bins import BinRange
from scheme.core import StandInPolicy
from scheme.members import Member
from scheme.server import ISSUER_TIMEOUT_S
from wire.clearingfile import CardType

_TOP_KEYS: Final = frozenset(
    {"switch_id", "listen", "hsm", "journal", "issuer_timeout_s", "stand_in_limit", "members", "bins"}
)
_MEMBER_KEYS: Final = frozenset({"institution_id", "name", "zak", "zpk", "issuer"})
_BIN_KEYS: Final = frozenset({"prefix", "issuer_id", "card_type"})


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SwitchConfig:
    switch_id: str
    listen: Endpoint
    hsm: Endpoint
    journal: Path
    members: tuple[Member, ...]
    bins: tuple[BinRange, ...]
    stand_in: StandInPolicy = dataclasses.field(default_factory=StandInPolicy)
    issuer_timeout_s: float = ISSUER_TIMEOUT_S


def _refuse_unknown(table: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(allowed))})")


def _need(table: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in table:
        raise ConfigError(f"{where}: {key} is required")
    return table[key]


def switch_config_from_mapping(raw: Mapping[str, Any], *, base_dir: Path, where: str = "switch config") -> SwitchConfig:
    _refuse_unknown(raw, _TOP_KEYS, where)
    try:
        members = []
        for index, table in enumerate(raw.get("members", [])):
            at = f"{where}: members[{index}]"
            _refuse_unknown(table, _MEMBER_KEYS, at)
            issuer = Endpoint.parse(table["issuer"]) if "issuer" in table else None
            members.append(
                Member(
                    institution_id=str(_need(table, "institution_id", at)),
                    name=str(table.get("name", "")),
                    zak=str(_need(table, "zak", at)),
                    zpk=str(_need(table, "zpk", at)),
                    issuer_host=issuer.host if issuer else None,
                    issuer_port=issuer.port if issuer else None,
                )
            )
        bins = []
        for index, table in enumerate(raw.get("bins", [])):
            at = f"{where}: bins[{index}]"
            _refuse_unknown(table, _BIN_KEYS, at)
            bins.append(
                BinRange(
                    prefix=str(_need(table, "prefix", at)),
                    issuer_id=str(_need(table, "issuer_id", at)),
                    card_type=CardType(_need(table, "card_type", at)),
                )
            )
        limit = raw.get("stand_in_limit")
        return SwitchConfig(
            switch_id=str(_need(raw, "switch_id", where)),
            listen=Endpoint.parse(str(_need(raw, "listen", where))),
            hsm=Endpoint.parse(str(_need(raw, "hsm", where))),
            journal=base_dir / str(raw.get("journal", "switch-journal.sqlite3")),
            members=tuple(members),
            bins=tuple(bins),
            stand_in=StandInPolicy(approve_limit=int(limit) if limit is not None else None),
            issuer_timeout_s=float(raw.get("issuer_timeout_s", ISSUER_TIMEOUT_S)),
        )
    except ConfigError:
        raise
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def load_switch_config(path: Path) -> SwitchConfig:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return switch_config_from_mapping(raw, base_dir=path.parent, where=str(path))
