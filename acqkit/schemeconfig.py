"""The ``[scheme]`` section of acqsim's configuration: the scheme switch and the issuer hosts ``acqsim up`` runs
beside the acquirer (docs/scheme.md#the-four-party-flow-over-processes-acqsim-up-with-scheme).

TOML layout (the whole section is optional; without it ``acqsim up`` runs the acquirer alone, every card on-us)::

    [scheme]
    switch_id = "00010000"        # the switch's institution id (field 100 towards it)
    host = "127.0.0.1"            # where the switch, its HSM and every issuer's services listen
    port = 5850                   # the switch link
    hsm_port = 5851               # the switch's own HSM (its own LMK, in data_dir/scheme/switch/)
    on_us = ["620000"]            # the acquirer's own BINs: these stay in its ledger; others go to the switch
    zmk = "…32 hex…"              # clear TEST zone keys of the acquirer ↔ switch link: the ZMK, then MAC and PIN
    zak = "…32 hex…"              #   keys that travel under it (A6) into both ends' HSMs
    zpk = "…32 hex…"
    stand_in_limit = 10000        # fen: the switch approves a silent issuer's card up to this; leave out: 91
    issuer_timeout_s = 3.0        # how long the switch waits for an issuer (leave out: the switch's default);
                                  #   must leave STAND_IN_MARGIN_S before the front-end's SWITCH_TIMEOUT_S

    [[scheme.issuers]]            # each: its own HSM, ledger and issuer host, data in data_dir/scheme/<name>/
    name = "bank-b"               # process titles issuer-<name>, issuer-<name>-hsm, issuer-<name>-ledger
    member_id = "63050000"        # its institution id
    debit_bins = ["623050"]
    credit_bins = ["625050"]
    port = 5860                   # its host on the switch link
    hsm_port = 5861
    ledger_port = 5862
    zmk = "…32 hex…"              # clear TEST zone keys of the switch ↔ issuer link
    zak = "…32 hex…"
    zpk = "…32 hex…"
    pvk = "…32 hex…"              # clear TEST PVK its cards' PVVs are under (default: the top-level pvk)

The issuer's cards are the ``[[cards]]`` whose PAN starts with one of its BINs: the terminal presents them and
the issuer's ledger is seeded with them. The clear zone keys are TEST material, like the terminals' TMKs: the
key ceremony forms the zone's ZMK from components at the HSMs of both ends of its link and imports the zone's ZAK
and ZPK under it there, and keeps only cryptograms (no clear key is written
to any file ``acqsim up`` makes).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Final

from acqkit.configbase import LOOPBACK, ConfigError, Endpoint

DEFAULT_SWITCH_ID: Final = "00010000"
DEFAULT_SWITCH_PORT: Final = 5850
DEFAULT_SWITCH_LISTEN: Final = Endpoint(host=LOOPBACK, port=DEFAULT_SWITCH_PORT)
DEFAULT_SWITCH_HSM: Final = Endpoint(host=LOOPBACK, port=DEFAULT_SWITCH_PORT + 1)
#: How long the front-end waits for one exchange with the switch (an issuer leg, PIN translation and MACs
#: included); ``scheme.client`` takes its default from here so the check below and the client agree.
SWITCH_TIMEOUT_S: Final = 8.0
#: Time the switch needs after giving up on an issuer to decide a stand-in, journal it, MAC it and answer. The
#: switch's issuer timeout plus this must stay under :data:`SWITCH_TIMEOUT_S`, or the front-end gives up first:
#: 98 and a reversal where the switch would have stood in.
STAND_IN_MARGIN_S: Final = 1.0
#: Institution ids are 8 digits here (PROTOCOL.md §10, fields 32/33/100).
MEMBER_ID_LEN: Final = 8
_KEY_HEX_LEN: Final = 32

_SCHEME_KEYS: Final = frozenset(
    {
        "switch_id",
        "host",
        "port",
        "hsm_port",
        "on_us",
        "zmk",
        "zak",
        "zpk",
        "stand_in_limit",
        "issuer_timeout_s",
        "issuers",
    }
)
_ISSUER_KEYS: Final = frozenset(
    {"name", "member_id", "debit_bins", "credit_bins", "port", "hsm_port", "ledger_port", "zmk", "zak", "zpk"} | {"pvk"}
)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SchemeIssuerConfig:
    """Another bank behind the switch, run by ``acqsim up``: its HSM, its core ledger, its issuer host."""

    name: str
    member_id: str
    listen: Endpoint
    hsm: Endpoint
    ledger: Endpoint
    zmk: str = dataclasses.field(repr=False)  # clear TEST zone master key of its link to the switch
    zak: str = dataclasses.field(repr=False)  # clear TEST zone MAC key of that link (travels under the ZMK)
    zpk: str = dataclasses.field(repr=False)  # clear TEST zone PIN key of that link
    pvk: str = dataclasses.field(repr=False)  # clear TEST PVK its cards' PVVs are under
    debit_bins: tuple[str, ...] = ()
    credit_bins: tuple[str, ...] = ()

    @property
    def title(self) -> str:
        """Its issuer host's process title (and folder name under ``data_dir/scheme``)."""
        return f"issuer-{self.name}"

    @property
    def bins(self) -> tuple[str, ...]:
        return (*self.debit_bins, *self.credit_bins)

    def issues(self, pan: str) -> bool:
        return any(pan.startswith(prefix) for prefix in self.bins)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SchemeConfig:
    """The switch and its members as ``acqsim up`` runs them (the acquirer is ``acquirer_id`` of the config)."""

    switch_id: str = DEFAULT_SWITCH_ID
    listen: Endpoint = DEFAULT_SWITCH_LISTEN
    hsm: Endpoint = DEFAULT_SWITCH_HSM
    on_us: tuple[str, ...] = ()
    zmk: str = dataclasses.field(repr=False)  # clear TEST zone keys of the acquirer's link
    zak: str = dataclasses.field(repr=False)
    zpk: str = dataclasses.field(repr=False)
    stand_in_limit: int | None = None
    issuer_timeout_s: float | None = None
    issuers: tuple[SchemeIssuerConfig, ...] = ()

    @property
    def off_us(self) -> tuple[str, ...]:
        """Every BIN the switch's issuers serve (the front-end sends these to the switch; any other, not on-us,
        is an unknown BIN: declined 14)."""
        return tuple(prefix for issuer in self.issuers for prefix in issuer.bins)

    def issuer_of(self, pan: str) -> SchemeIssuerConfig | None:
        return next((issuer for issuer in self.issuers if issuer.issues(pan)), None)


def _strings(table: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.isdigit() for v in value):
        raise ConfigError(f"{where} {key} must be a list of digit strings (BIN prefixes)", table="scheme", key=key)
    return tuple(value)


def _key(table: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = table.get(key, default)
    if value is None:
        raise ConfigError(f"{where} {key} is required (a clear TEST key, 32 hex)", table="scheme", key=key)
    text = str(value)
    if len(text) != _KEY_HEX_LEN or any(c not in "0123456789abcdefABCDEF" for c in text):
        raise ConfigError(f"{where} {key} must be 32 hex digits", table="scheme", key=key)
    return text.upper()


def _member_id(table: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = str(table.get(key, default or ""))
    if len(value) != MEMBER_ID_LEN or not value.isdigit():
        raise ConfigError(f"{where} {key} must be {MEMBER_ID_LEN} digits", table="scheme", key=key)
    return value


def _port(table: Mapping[str, Any], key: str, where: str, default: int | None = None) -> int:
    value = table.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0xFFFF:
        raise ConfigError(f"{where} {key} must be a port number", table="scheme", key=key)
    return value


def _refuse_unknown(table: Mapping[str, Any], known: frozenset[str], where: str) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(
            f"{where} unknown key {unknown[0]!r} (valid: {', '.join(sorted(known))})", table="scheme", key=unknown[0]
        )


def scheme_from_mapping(raw: Mapping[str, Any], *, default_pvk: str) -> SchemeConfig:
    """The ``[scheme]`` table → :class:`SchemeConfig`; raises :class:`ConfigError` naming the key."""
    _refuse_unknown(raw, _SCHEME_KEYS, "[scheme]")
    host = str(raw.get("host", LOOPBACK))
    port = _port(raw, "port", "[scheme]", DEFAULT_SWITCH_PORT)
    issuers_raw = raw.get("issuers", [])
    if not isinstance(issuers_raw, list):
        raise ConfigError("[[scheme.issuers]] must be an array of tables", table="scheme", key="issuers")
    issuers = []
    for index, table in enumerate(issuers_raw):
        at = f"[[scheme.issuers]] {index}:"
        if not isinstance(table, Mapping):
            raise ConfigError(f"{at} must be a table", table="scheme", key="issuers")
        _refuse_unknown(table, _ISSUER_KEYS, at)
        name = str(table.get("name", ""))
        if not name or not all(c.isalnum() or c == "-" for c in name):
            raise ConfigError(f"{at} name must be letters, digits and '-'", table="scheme", key="name")
        issuers.append(
            SchemeIssuerConfig(
                name=name,
                member_id=_member_id(table, "member_id", at),
                listen=Endpoint(host=host, port=_port(table, "port", at)),
                hsm=Endpoint(host=host, port=_port(table, "hsm_port", at)),
                ledger=Endpoint(host=host, port=_port(table, "ledger_port", at)),
                zmk=_key(table, "zmk", at),
                zak=_key(table, "zak", at),
                zpk=_key(table, "zpk", at),
                pvk=_key(table, "pvk", at, default_pvk),
                debit_bins=_strings(table, "debit_bins", at),
                credit_bins=_strings(table, "credit_bins", at),
            )
        )
    if len({i.name for i in issuers}) != len(issuers) or len({i.member_id for i in issuers}) != len(issuers):
        raise ConfigError("[[scheme.issuers]] names and member ids must differ", table="scheme", key="issuers")
    limit = raw.get("stand_in_limit")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
        raise ConfigError("[scheme] stand_in_limit must be a whole number of fen", table="scheme", key="stand_in_limit")
    timeout = raw.get("issuer_timeout_s")
    if timeout is not None and (not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0):
        raise ConfigError("[scheme] issuer_timeout_s must be positive seconds", table="scheme", key="issuer_timeout_s")
    if timeout is not None and timeout + STAND_IN_MARGIN_S >= SWITCH_TIMEOUT_S:
        raise ConfigError(
            f"[scheme] issuer_timeout_s = {timeout} s leaves the switch no time to stand in: issuer_timeout_s +"
            f" {STAND_IN_MARGIN_S} s (stand-in margin) must be under the front-end's switch timeout"
            f" (SWITCH_TIMEOUT_S = {SWITCH_TIMEOUT_S} s), else the front-end answers 98 and reverses",
            table="scheme",
            key="issuer_timeout_s",
        )
    return SchemeConfig(
        switch_id=_member_id(raw, "switch_id", "[scheme]", DEFAULT_SWITCH_ID),
        listen=Endpoint(host=host, port=port),
        hsm=Endpoint(host=host, port=_port(raw, "hsm_port", "[scheme]", port + 1)),
        on_us=_strings(raw, "on_us", "[scheme]"),
        zmk=_key(raw, "zmk", "[scheme]"),
        zak=_key(raw, "zak", "[scheme]"),
        zpk=_key(raw, "zpk", "[scheme]"),
        stand_in_limit=limit,
        issuer_timeout_s=float(timeout) if timeout is not None else None,
        issuers=tuple(issuers),
    )


def scheme_to_mapping(scheme: SchemeConfig) -> dict[str, Any]:
    """The inverse of :func:`scheme_from_mapping` (TOML has no null: unset options are left out)."""
    raw: dict[str, Any] = {
        "switch_id": scheme.switch_id,
        "host": scheme.listen.host,
        "port": scheme.listen.port,
        "hsm_port": scheme.hsm.port,
        "on_us": list(scheme.on_us),
        "zmk": scheme.zmk,
        "zak": scheme.zak,
        "zpk": scheme.zpk,
        "issuers": [
            {
                "name": issuer.name,
                "member_id": issuer.member_id,
                "debit_bins": list(issuer.debit_bins),
                "credit_bins": list(issuer.credit_bins),
                "port": issuer.listen.port,
                "hsm_port": issuer.hsm.port,
                "ledger_port": issuer.ledger.port,
                "zmk": issuer.zmk,
                "zak": issuer.zak,
                "zpk": issuer.zpk,
                "pvk": issuer.pvk,
            }
            for issuer in scheme.issuers
        ],
    }
    if scheme.stand_in_limit is not None:
        raw["stand_in_limit"] = scheme.stand_in_limit
    if scheme.issuer_timeout_s is not None:
        raw["issuer_timeout_s"] = scheme.issuer_timeout_s
    return raw
