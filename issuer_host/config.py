"""An issuer host's configuration file (TOML), for ``acqsim issuer serve --config FILE`` (docs/scheme.md).

    issuer_id = "63050000"
    switch_id = "00010000"
    listen = "127.0.0.1:7201"
    hsm = "127.0.0.1:1520"     # the issuer's own HSM
    ledger = "127.0.0.1:1521"  # the issuer's own core ledger (acqsim ledger serve, its own data folder)
    zak = "U…"                 # the zone's ZAK and ZPK, and the PVK, under the issuer HSM's LMK
    zpk = "U…"
    pvk = "U…"

An unknown key, a missing one or a bad value is a :class:`acqkit.config.ConfigError` naming the file and key.
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Final

from acqkit.config import ConfigError, Endpoint
from hsm_sim.client import is_key_under_lmk
from issuer_host.server import IssuerKeys
from wire.switchlink import INSTITUTION_ID_LEN

_KEYS: Final = frozenset({"issuer_id", "switch_id", "listen", "hsm", "ledger", "zak", "zpk", "pvk"})


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class IssuerConfig:
    issuer_id: str
    switch_id: str
    listen: Endpoint
    hsm: Endpoint
    ledger: Endpoint
    keys: IssuerKeys


def load_issuer_config(path: Path) -> IssuerConfig:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_KEYS))})")
    missing = sorted(_KEYS - set(raw))
    if missing:
        raise ConfigError(f"{path}: {missing[0]} is required")
    for name in ("issuer_id", "switch_id"):
        if len(str(raw[name])) != INSTITUTION_ID_LEN or not str(raw[name]).isdigit():
            raise ConfigError(f"{path}: {name} must be {INSTITUTION_ID_LEN} digits")
    for name in ("zak", "zpk", "pvk"):
        if not is_key_under_lmk(str(raw[name])):
            raise ConfigError(f"{path}: {name} must be U + 32 hex (under the issuer HSM's LMK)")
    return IssuerConfig(
        issuer_id=str(raw["issuer_id"]),
        switch_id=str(raw["switch_id"]),
        listen=Endpoint.parse(str(raw["listen"])),
        hsm=Endpoint.parse(str(raw["hsm"])),
        ledger=Endpoint.parse(str(raw["ledger"])),
        keys=IssuerKeys(zak=str(raw["zak"]), zpk=str(raw["zpk"]), pvk=str(raw["pvk"])),
    )
