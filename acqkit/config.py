"""acqsim's one configuration: the topology (services, ports, routes, stores) and the test material.

A TOML file describes everything; :func:`load_config` reads one, and :meth:`AcqsimConfig.default` builds the
built-in default (loopback ports, SQLite stores in a local data folder, the test fixtures of PROTOCOL.md §5).

TOML layout (every table optional; omitted values take the defaults below)::

    data_dir = ".acqsim"          # stores, traces, terminal state; relative to the config file
    trace = true                  # every service writes JSON-lines trace records (off for load runs)
    acquirer_id = "48009999"      # field 32
    currency = "156"              # field 49
    pvk = "…32 hex…"              # clear TEST PVK pair (Visa PVV); imported through the HSM at start-up
    imk_ac = "…32 hex…"           # clear TEST IMK-AC: chip cards' AC master keys derive from it (option A)
    bdk = "…32 hex…"              # clear TEST DUKPT BDK of the MPOS readers (ANSI X9.24-1 test BDK)
    bdk_ksi = "FFFF987654"        # its key set id: the first 5 bytes of every KSN under it
    tls = false                   # mutual TLS on every service hop (certificates: `acqsim certs create`)

    [hsm]       host = "127.0.0.1"  port = 1500   audit = "hsm-audit.jsonl"
                lmk_file = "hsm/lmk.json"        # the LMK sealed at rest; read by the HSM only
                allow_clear_import = true        # TEST: the key ceremony loads the clear TEST keys (A4)
                allowed_clients = ["frontend"]   # or [hsm.allowed_clients] frontend = ["M8", "DC", …]
    [ledger]    host = "127.0.0.1"  port = 5810   db = "ledger.sqlite3"   # or postgresql://…
    [frontend]  host = "127.0.0.1"  port = 5803   db = "frontend.sqlite3"
                instances = 1     # a pool of 1–9 front-ends on ports port, port+1, …; each its own journal in
                                  # data_dir/frontend-K/, its own RRNs; the NAC keeps each terminal on one
    [nac]       host = "127.0.0.1"  port = 5800   status_port = 5801
    [wallet]    host = "127.0.0.1"  port = 5820   db = "wallet.sqlite3"     # the QR wallet host (docs/qr.md)
    [merchant]  host = "127.0.0.1"  port = 5840   db = "merchant.sqlite3"   # the merchant platform (docs/smartpos.md)
                authenticate = true   # every request signed (KI/TS/NC/HM), its MAC verified in the HSM
    [nac.routes]
    "0003" = ["frontend"]         # TPDU DST → upstream members: a service name or "host:port"
    [scheme]    …                 # the scheme switch and issuer hosts acqsim up runs too (acqkit/schemeconfig.py)

    # each service table also takes max_connections = 1024 (served at once; more are closed at once)

    [[merchants]]  merchant_id = "898100000000001"  name = "…"  mcc = "5812"  settlement = "direct"  fee_bp = 38
    [[terminals]]  terminal_id = "10000001"  merchant_id = "…"  tmk = "…32 hex…"  app_type = "61"  route = "0003"
    [[cards]]      pan = "…"  expiry = "3012"  pin = "123456"  pvki = "1"  pvv = "6308"  balance = 50000000
                   psn = "01"  chip = "ok"   # chip: ok | fails (fallback to stripe) | declines | none

Clear keys and PINs in this file are TEST material only (they are documented so any client can transact);
services never log them. The LMK is not in this file: only the HSM opens its LMK file. The key ceremony
(``acqsim/provision.py``) hands the TEST keys to the HSM as clear components — allowed only because this TEST
configuration says ``allow_clear_import = true`` — and keeps only the cryptograms, in the key store.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, TypeVar

import tomli_w

from acqkit.configbase import LOOPBACK as LOOPBACK  # noqa: PLC0414 (re-export)
from acqkit.configbase import MAX_PORT as MAX_PORT  # noqa: PLC0414 (re-export)
from acqkit.configbase import ConfigError as ConfigError  # noqa: PLC0414 (re-export)
from acqkit.configbase import Endpoint as Endpoint  # noqa: PLC0414 (re-export)
from acqkit.configbase import split_host_port as split_host_port  # noqa: PLC0414 (re-export)
from acqkit.keystore import key_store_path
from acqkit.netio import DEFAULT_MAX_CONNECTIONS
from acqkit.schemeconfig import SchemeConfig, scheme_from_mapping, scheme_to_mapping
from acqkit.tls import TLS_DIR_NAME
from wire.constants import CURRENCY_CNY
from wire.tpdu import DEFAULT_ROUTE

#: Where the default configuration keeps its stores, traces and terminal state (``ACQSIM_HOME`` overrides).
DEFAULT_DATA_DIR: Final = Path(".acqsim")

DEFAULT_HSM_PORT: Final = 1500  # payShield's customary host port
DEFAULT_LEDGER_PORT: Final = 5810
DEFAULT_FRONTEND_PORT: Final = 5803
DEFAULT_NAC_PORT: Final = 5800
DEFAULT_NAC_STATUS_PORT: Final = 5801
DEFAULT_WALLET_PORT: Final = 5820
DEFAULT_MERCHANT_PORT: Final = 5840
DEFAULT_ACQUIRER_ID: Final = "48009999"
DEFAULT_LMK_FILE: Final = "hsm/lmk.json"

#: TEST PVK pair (odd parity) for Visa PVV; the cards' PVVs below were computed with it and PVKI 1.
TEST_PVK: Final = "7A3D5E1F2A4C6B8C9E0E1A2A3D4C5E6E"
#: TEST TMK of terminal 10000001: the sign-on vector key of PROTOCOL.md §6.
TEST_TMK_1: Final = "0123456789ABCDEFFEDCBA9876543210"
TEST_TMK_2: Final = "3B6D1A8F5D2F7049E0B3D5A7C8F12568"
#: TEST IMK-AC: the IMK of the published PBOC example (PROTOCOL.md §7) with odd parity set (DES ignores those
#: bits, so the example's card keys and cryptograms come out the same).
TEST_IMK_AC: Final = "F1C24A8025CEE0A81A0B024AA87C6EAD"
#: TEST DUKPT BDK: the ANSI X9.24-1 test BDK of PROTOCOL.md §8, and the key set id (the KSN's first 5 bytes)
#: that names it: MPOS readers are injected with KSNs that start with it.
TEST_BDK: Final = "0123456789ABCDEFFEDCBA9876543210"
TEST_BDK_KSI: Final = "FFFF987654"

SETTLEMENT_DIRECT: Final = "direct"  # 一清: the acquirer pays the merchant's own account
SETTLEMENT_SECONDARY: Final = "secondary"  # 二清: an aggregator is paid and pays its sub-merchants


#: Terminal connections one NAC serves at once (terminals connect per transaction: many more than services).
NAC_MAX_CONNECTIONS: Final = 10_000

_T = TypeVar("_T")


#: ``--config``'s help, the same for every command that reads the configuration.
CONFIG_HELP: Final = "acqsim TOML configuration file (default: the built-in one, data in .acqsim/)"


def port_number(text: str) -> int:
    """An argparse ``type`` for ``--port``: 0..65535 (0: any free port), or a usage error naming the value."""
    if not text.isdigit() or not 0 <= int(text) <= MAX_PORT:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0 to {MAX_PORT})")
    return int(text)


def positive_count(text: str) -> int:
    """An argparse ``type`` for a count of at least 1, or a usage error naming the value."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a count (a whole number of at least 1)")
    return int(text)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class HsmConfig:
    listen: Endpoint = Endpoint(host=LOOPBACK, port=DEFAULT_HSM_PORT)
    #: The LMK sealed under a passphrase (hsm_sim/lmk_store.py), relative to data_dir; created at the first
    #: start with a random LMK. Only the HSM process is told where it is.
    lmk_file: str = DEFAULT_LMK_FILE
    #: Whether the HSM takes clear key components (A4). The built-in configuration is TEST material and
    #: enables it so that its key ceremony can load the clear TEST keys; a real estate sets false.
    allow_clear_import: bool = True
    max_connections: int = DEFAULT_MAX_CONNECTIONS  # served at once; more are accepted and closed at once
    #: Verified client identities (TLS certificate CN) → the commands each may send (empty = all). Enforced
    #: only with ``tls = true``; on plain TCP every client is anonymous.
    #: Under TLS: the front-end may use every command; the merchant platform only verifies link MACs (M8).
    allowed_clients: Mapping[str, tuple[str, ...]] = dataclasses.field(
        default_factory=lambda: {"frontend": (), "merchant": ("M8",)}
    )
    audit: str = "hsm-audit.jsonl"  # the HSM audit log: a path, relative to data_dir


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class LedgerConfig:
    listen: Endpoint = Endpoint(host=LOOPBACK, port=DEFAULT_LEDGER_PORT)
    db: str = "ledger.sqlite3"  # a path (relative to data_dir) or a postgresql:// URL
    max_connections: int = DEFAULT_MAX_CONNECTIONS


#: Front-ends a pool may hold: the instance number is one RRN digit (frontend/journal.py).
MAX_FRONTENDS: Final = 9


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class FrontendConfig:
    listen: Endpoint = Endpoint(host=LOOPBACK, port=DEFAULT_FRONTEND_PORT)
    db: str = "frontend.sqlite3"
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    #: Front-end processes in the pool (``acqsim up --frontends N``), 1–:data:`MAX_FRONTENDS`.
    instances: int = 1
    #: Where instances 2…N listen when not on the ports after ``listen`` (free ports: ``--ephemeral-ports``).
    pool: tuple[Endpoint, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class WalletConfig:
    """The QR wallet host (docs/qr.md): the front-end asks it to charge QR payments."""

    listen: Endpoint = Endpoint(host=LOOPBACK, port=DEFAULT_WALLET_PORT)
    db: str = "wallet.sqlite3"
    max_connections: int = DEFAULT_MAX_CONNECTIONS


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class MerchantPlatformConfig:
    """The merchant platform (docs/smartpos.md): the smart POS's apps."""

    listen: Endpoint = Endpoint(host=LOOPBACK, port=DEFAULT_MERCHANT_PORT)
    db: str = "merchant.sqlite3"
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    #: Every request must be signed by a terminal's merchant-link key, verified in the HSM (docs/smartpos.md).
    authenticate: bool = True


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class NacConfig:
    listen: Endpoint = Endpoint(host=LOOPBACK, port=DEFAULT_NAC_PORT)
    status: Endpoint | None = Endpoint(host=LOOPBACK, port=DEFAULT_NAC_STATUS_PORT)
    #: TPDU DST → members, each a service name ("frontend") or "host:port".
    routes: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=lambda: {DEFAULT_ROUTE: ("frontend",)})
    max_connections: int = NAC_MAX_CONNECTIONS  # terminal connections served at once


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class MerchantFixture:
    merchant_id: str  # field 42, 15 characters
    name: str
    mcc: str = "5812"
    settlement: str = SETTLEMENT_DIRECT
    aggregator: str | None = None  # for secondary settlement: the aggregator's name/account
    fee_bp: int = 38  # merchant discount rate, basis points
    city: str = "SHANGHAI"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TerminalFixture:
    terminal_id: str  # field 41, 8 characters
    merchant_id: str
    tmk: str  # clear TEST TMK, 32 hex (double-length, odd parity)
    app_type: str = "61"  # header application type: 60 magstripe POS, 61 chip POS, 67 MPOS
    route: str = DEFAULT_ROUTE


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CardFixture:
    pan: str
    expiry: str  # YYMM
    pin: str  # TEST PIN
    pvv: str  # Visa PVV under the config's PVK with ``pvki``
    pvki: str = "1"
    service_code: str = "201"  # chip card, normal authorisation
    status: str = "good"  # good | lost | stolen | blocked | restricted
    balance: int = 0  # opening balance, minor units
    daily_limit: int | None = None  # minor units; None = no limit
    holder: str = "TEST CARDHOLDER"
    note: str = ""
    psn: str = "01"  # PAN sequence number (tag 5F34, field 23)
    chip: str = "ok"  # ok | fails (the terminal falls back to the stripe) | declines (after approval) | none
    script: str = ""  # TEST issuer script command (APDU hex) the front-end sends this chip card on approvals

    @property
    def track2(self) -> str:
        """Track 2 equivalent: ``PAN=YYMM SSS K VVVV`` + discretionary zeros (PROTOCOL.md §1)."""
        return f"{self.pan}={self.expiry}{self.service_code}{self.pvki}{self.pvv}00000"


DEFAULT_MERCHANTS: Final = (
    MerchantFixture(merchant_id="898100000000001", name="ACQSIM TEST COFFEE", mcc="5812", fee_bp=38),
    MerchantFixture(
        merchant_id="898100000000002",
        name="ACQSIM TEST MARKET",
        mcc="5411",
        settlement=SETTLEMENT_SECONDARY,
        aggregator="ACQSIM TEST AGGREGATOR",
        fee_bp=60,
    ),
)

DEFAULT_TERMINALS: Final = (
    TerminalFixture(terminal_id="10000001", merchant_id="898100000000001", tmk=TEST_TMK_1, app_type="61"),
    TerminalFixture(terminal_id="10000002", merchant_id="898100000000002", tmk=TEST_TMK_2, app_type="67"),
)

DEFAULT_CARDS: Final = (
    CardFixture(
        pan="6200001000000003",
        expiry="3012",
        pin="123456",
        pvv="6308",
        balance=50_000_000,
        holder="ZHANG SAN",
        note="good",
    ),
    CardFixture(
        pan="6200001000000011",
        expiry="3012",
        pin="654321",
        pvv="1489",
        balance=100_000,
        daily_limit=2_000_000,
        holder="LI SI",
        note="good, daily limit 20000.00 (transfer target); its chip fails (fallback to the stripe)",
        chip="fails",
    ),
    CardFixture(
        pan="6200002000000027",
        expiry="2401",
        pin="111111",
        pvv="1171",
        balance=100_000,
        holder="WANG WU",
        note="expired",
    ),
    CardFixture(
        pan="6200003000000033",
        expiry="3012",
        pin="222222",
        pvv="4468",
        balance=100_000,
        status="lost",
        holder="ZHAO LIU",
        note="lost",
    ),
    CardFixture(
        pan="6200004000000049",
        expiry="3012",
        pin="333333",
        pvv="4203",
        balance=1_000,
        holder="SUN QI",
        note="low balance (10.00), its chip approvals carry an issuer script (PUT DATA)",
        script="04DA9F580103",
    ),
    CardFixture(
        pan="6200005000000053",
        expiry="3012",
        pin="444444",
        pvv="6014",
        balance=100_000,
        status="stolen",
        holder="ZHOU BA",
        note="stolen",
    ),
    CardFixture(
        pan="62000060000000061",
        expiry="3012",
        pin="888888",
        pvv="6297",
        balance=2_000_000,
        holder="WU JIU",
        note="good, 17-digit PAN; its chip declines after the host approves (the terminal reverses)",
        chip="declines",
    ),
)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class AcqsimConfig:
    data_dir: Path = DEFAULT_DATA_DIR
    acquirer_id: str = DEFAULT_ACQUIRER_ID
    currency: str = CURRENCY_CNY
    pvk: str = TEST_PVK
    imk_ac: str = TEST_IMK_AC
    bdk: str = TEST_BDK
    bdk_ksi: str = TEST_BDK_KSI
    #: Whether the services write trace records; each one dissects and masks a message, which costs CPU.
    trace: bool = True
    #: Mutual TLS on every service-to-service hop, with the certificates of ``acqsim certs create``.
    tls: bool = False
    hsm: HsmConfig = HsmConfig()
    ledger: LedgerConfig = LedgerConfig()
    frontend: FrontendConfig = FrontendConfig()
    nac: NacConfig = dataclasses.field(default_factory=NacConfig)
    wallet: WalletConfig = WalletConfig()
    #: The ``[merchant]`` table (``merchant(id)`` is a merchant fixture).
    merchant_platform: MerchantPlatformConfig = MerchantPlatformConfig()
    merchants: tuple[MerchantFixture, ...] = DEFAULT_MERCHANTS
    terminals: tuple[TerminalFixture, ...] = DEFAULT_TERMINALS
    cards: tuple[CardFixture, ...] = DEFAULT_CARDS
    #: The ``[scheme]`` table: the switch and issuer hosts ``acqsim up`` runs too (acqkit/schemeconfig.py);
    #: ``None``: the acquirer alone, every card on-us.
    scheme: SchemeConfig | None = None

    @classmethod
    def default(cls, data_dir: Path | None = None) -> AcqsimConfig:
        home = os.environ.get("ACQSIM_HOME")
        return cls(data_dir=data_dir or (Path(home) if home else DEFAULT_DATA_DIR))

    # Where things live, resolved against data_dir.
    def store_path(self, db: str) -> str:
        """A store setting as given (URL) or as a path under data_dir."""
        return db if "://" in db else str(self.data_dir / db)

    @property
    def tls_dir(self) -> Path:
        """Where ``acqsim certs create`` writes the CA and the service certificates."""
        return self.data_dir / TLS_DIR_NAME

    @property
    def key_store_path(self) -> Path:
        """The key store of cryptograms under the LMK (acqkit/keystore.py)."""
        return key_store_path(self.data_dir)

    @property
    def trace_dir(self) -> Path:
        return self.data_dir / "traces"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def terminal_state_dir(self) -> Path:
        return self.data_dir / "terminals"

    def terminal(self, terminal_id: str) -> TerminalFixture:
        for terminal in self.terminals:
            if terminal.terminal_id == terminal_id:
                return terminal
        raise ConfigError(f"terminal {terminal_id!r} is not configured")

    def merchant(self, merchant_id: str) -> MerchantFixture:
        for merchant in self.merchants:
            if merchant.merchant_id == merchant_id:
                return merchant
        raise ConfigError(f"merchant {merchant_id!r} is not configured")

    def card(self, pan: str) -> CardFixture:
        for card in self.cards:
            if card.pan == pan:
                return card
        raise ConfigError(f"card {pan[:6]}…{pan[-4:]} is not configured")

    def route_members(self, route: str) -> tuple[Endpoint, ...]:
        """The upstream endpoints of a NAC route, service names resolved."""
        members = self.nac.routes.get(route)
        if members is None:
            raise ConfigError(f"nac.routes has no route {route!r}")
        resolved: list[Endpoint] = []
        for member in members:
            resolved.extend(self.frontend_endpoints() if member == "frontend" else (Endpoint.parse(member),))
        return tuple(resolved)

    def frontend_endpoints(self) -> tuple[Endpoint, ...]:
        """Where each front-end of the pool listens: instance 1 on ``listen``, then ``pool`` or the next ports."""
        fe = self.frontend
        if fe.instances == 1:
            return (fe.listen,)
        rest = fe.pool or tuple(Endpoint(host=fe.listen.host, port=fe.listen.port + k) for k in range(1, fe.instances))
        return (fe.listen, *rest[: fe.instances - 1])

    def check_listen_ports(self) -> None:
        """Raise :class:`ConfigError` when two services would listen on one address (a pool's ports run on from
        ``[frontend] port``: 8 front-ends from 5803 reach the ledger's 5810)."""
        named = [("hsm", self.hsm.listen), ("ledger", self.ledger.listen), ("nac", self.nac.listen)]
        named += [("nac status", self.nac.status)] if self.nac.status else []
        named += [(f"front-end {k}", e) for k, e in enumerate(self.frontend_endpoints(), 1)]
        if self.scheme is not None:
            named += [("scheme switch", self.scheme.listen), ("scheme HSM", self.scheme.hsm)]
            for issuer in self.scheme.issuers:
                title = issuer.title
                named += [(title, issuer.listen), (f"{title} HSM", issuer.hsm), (f"{title} ledger", issuer.ledger)]
        seen: dict[Endpoint, str] = {}
        for name, endpoint in named:
            if endpoint in seen:
                raise ConfigError(f"{seen[endpoint]} and {name} would both listen on {endpoint}: move a port")
            seen[endpoint] = name

    def frontend_db(self, instance: int | None = None) -> str:
        """The journal of the front-end (``instance`` of a pool: in its own folder ``frontend-K``)."""
        if instance is None or "://" in self.frontend.db:
            return self.store_path(self.frontend.db)
        return str(self.data_dir / f"frontend-{instance}" / self.frontend.db)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view (``acqsim config show --json``); clear TEST keys and PINs included by design."""
        raw = dataclasses.asdict(self)
        raw["data_dir"] = str(self.data_dir)
        for name in ("hsm", "ledger", "frontend", "nac"):
            raw[name]["listen"] = str(getattr(self, name).listen)
        raw["frontend"]["pool"] = [str(e) for e in self.frontend.pool]
        raw["nac"]["status"] = str(self.nac.status) if self.nac.status else None
        raw["nac"]["routes"] = {k: list(v) for k, v in self.nac.routes.items()}
        for card, card_raw in zip(self.cards, raw["cards"], strict=True):
            card_raw["track2"] = card.track2
        return raw


def _table(raw: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = raw.get(name, {})
    if not isinstance(value, Mapping):
        raise ConfigError(f"[{name}] must be a table", table=name)
    return value


def _endpoint(table: Mapping[str, Any], name: str, default: Endpoint) -> Endpoint:
    host = table.get("host", default.host)
    port = table.get("port", default.port)
    if not isinstance(host, str):
        raise ConfigError(f"[{name}] host must be a string", table=name, key="host")
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= MAX_PORT:
        raise ConfigError(f"[{name}] port must be an integer from 0 to {MAX_PORT}", table=name, key="port")
    return Endpoint(host=host, port=port)


def _allowed_clients(table: Mapping[str, Any], default: Mapping[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    """``allowed_clients = ["frontend"]`` (all commands) or ``[hsm.allowed_clients] frontend = ["M8", "DC"]``."""
    value = table.get("allowed_clients", default)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return {name: () for name in value}
    if isinstance(value, Mapping) and all(
        isinstance(cmds, list | tuple) and all(isinstance(c, str) and len(c) == 2 for c in cmds)
        for cmds in value.values()
    ):
        return {str(name): tuple(cmds) for name, cmds in value.items()}
    raise ConfigError(
        "[hsm] allowed_clients must be a list of names or a table of name = [command codes]",
        table="hsm",
        key="allowed_clients",
    )


def _instances(table: Mapping[str, Any]) -> int:
    value = table.get("instances", 1)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_FRONTENDS:
        raise ConfigError(
            f"[frontend] instances must be an integer from 1 to {MAX_FRONTENDS}", table="frontend", key="instances"
        )
    return value


def _max_connections(table: Mapping[str, Any], name: str, default: int = DEFAULT_MAX_CONNECTIONS) -> int:
    value = table.get("max_connections", default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"[{name}] max_connections must be a positive integer", table=name, key="max_connections")
    return value


def _records(raw: Mapping[str, Any], name: str, cls: type[_T], default: tuple[_T, ...]) -> tuple[_T, ...]:
    if name not in raw:
        return default
    items = raw[name]
    if not isinstance(items, list):
        raise ConfigError(f"[[{name}]] must be an array of tables", table=name)
    out = []
    for index, item in enumerate(items):
        try:
            out.append(cls(**item))
        except TypeError as exc:
            raise ConfigError(f"[[{name}]] entry {index}: {exc}", table=name) from None
    return tuple(out)


#: Every key each table may hold; anything else is refused, naming the nearest valid key (a typo must not
#: silently leave a setting at its default). The fixture tables' keys are their dataclasses' fields.
KNOWN_KEYS: Final[dict[str, frozenset[str]]] = {
    "": frozenset(
        {"data_dir", "trace", "tls", "acquirer_id", "currency", "pvk", "imk_ac", "bdk", "bdk_ksi", "hsm"}
        | {"ledger", "frontend", "nac", "wallet", "merchant"}
        | {"merchants", "terminals", "cards", "scheme"}
    ),
    "hsm": frozenset({"host", "port", "lmk_file", "allow_clear_import", "max_connections", "allowed_clients", "audit"}),
    "ledger": frozenset({"host", "port", "db", "max_connections"}),
    "frontend": frozenset({"host", "port", "db", "max_connections", "instances"}),
    "nac": frozenset({"host", "port", "status_port", "routes", "max_connections"}),
    "wallet": frozenset({"host", "port", "db", "max_connections"}),
    "merchant": frozenset({"host", "port", "db", "max_connections", "authenticate"}),
}


def unknown_keys(raw: Mapping[str, Any]) -> list[tuple[str, str, str | None]]:
    """(table, key, nearest valid key) for every key the configuration does not know."""
    found = []
    for table, known in KNOWN_KEYS.items():
        section = raw if not table else raw.get(table, {})
        if not isinstance(section, Mapping):
            continue
        for key in section:
            if key not in known:
                near = difflib.get_close_matches(key, sorted(known), n=1)
                found.append((table, key, near[0] if near else None))
    return found


def _refuse_unknown(raw: Mapping[str, Any], path: Path | None = None, text: str = "") -> None:
    problems = unknown_keys(raw)
    if not problems:
        return
    table, key, near = problems[0]
    where = f"[{table}] " if table else ""
    hint = f" (did you mean {near!r}?)" if near else f" (valid: {', '.join(sorted(KNOWN_KEYS[table]))})"
    line = next(
        (n for n, row in enumerate(text.splitlines(), 1) if row.strip().split("=")[0].strip().strip('"') == key), None
    )
    at = f"{path}:{line}: " if path is not None and line else f"{path}: " if path is not None else ""
    raise ConfigError(f"{at}{where}unknown key {key!r}{hint}")


def config_from_mapping(raw: Mapping[str, Any], *, base_dir: Path = Path()) -> AcqsimConfig:
    _refuse_unknown(raw)
    defaults = AcqsimConfig.default()
    hsm_t, ledger_t, fe_t, nac_t = (_table(raw, n) for n in ("hsm", "ledger", "frontend", "nac"))
    wallet_t, merchant_t = _table(raw, "wallet"), _table(raw, "merchant")
    status_port = nac_t.get("status_port", defaults.nac.status.port if defaults.nac.status else None)
    routes_raw = nac_t.get("routes", {DEFAULT_ROUTE: ["frontend"]})
    routes = {str(k): tuple(v if isinstance(v, list) else [v]) for k, v in routes_raw.items()}
    nac_listen = _endpoint(nac_t, "nac", defaults.nac.listen)
    data_dir = Path(raw.get("data_dir", str(defaults.data_dir)))
    trace = raw.get("trace", defaults.trace)
    if not isinstance(trace, bool):
        raise ConfigError("trace must be true or false", key="trace")
    tls = raw.get("tls", defaults.tls)
    if not isinstance(tls, bool):
        raise ConfigError("tls must be true or false", key="tls")
    allow_clear_import = hsm_t.get("allow_clear_import", defaults.hsm.allow_clear_import)
    if not isinstance(allow_clear_import, bool):
        raise ConfigError("[hsm] allow_clear_import must be true or false", table="hsm", key="allow_clear_import")
    authenticate = _table(raw, "merchant").get("authenticate", defaults.merchant_platform.authenticate)
    if not isinstance(authenticate, bool):
        raise ConfigError("[merchant] authenticate must be true or false", table="merchant", key="authenticate")
    return AcqsimConfig(
        data_dir=data_dir if data_dir.is_absolute() else base_dir / data_dir,
        acquirer_id=str(raw.get("acquirer_id", defaults.acquirer_id)),
        currency=str(raw.get("currency", defaults.currency)),
        pvk=str(raw.get("pvk", defaults.pvk)),
        imk_ac=str(raw.get("imk_ac", defaults.imk_ac)),
        bdk=str(raw.get("bdk", defaults.bdk)),
        bdk_ksi=str(raw.get("bdk_ksi", defaults.bdk_ksi)),
        trace=trace,
        tls=tls,
        hsm=HsmConfig(
            listen=_endpoint(hsm_t, "hsm", defaults.hsm.listen),
            lmk_file=str(hsm_t.get("lmk_file", defaults.hsm.lmk_file)),
            allow_clear_import=allow_clear_import,
            max_connections=_max_connections(hsm_t, "hsm"),
            allowed_clients=_allowed_clients(hsm_t, defaults.hsm.allowed_clients),
            audit=str(hsm_t.get("audit", defaults.hsm.audit)),
        ),
        ledger=LedgerConfig(
            listen=_endpoint(ledger_t, "ledger", defaults.ledger.listen),
            db=str(ledger_t.get("db", defaults.ledger.db)),
            max_connections=_max_connections(ledger_t, "ledger"),
        ),
        frontend=FrontendConfig(
            listen=_endpoint(fe_t, "frontend", defaults.frontend.listen),
            db=str(fe_t.get("db", defaults.frontend.db)),
            max_connections=_max_connections(fe_t, "frontend"),
            instances=_instances(fe_t),
        ),
        nac=NacConfig(
            listen=nac_listen,
            status=None if status_port is None else Endpoint(host=nac_listen.host, port=int(status_port)),
            routes=routes,
            max_connections=_max_connections(nac_t, "nac", NAC_MAX_CONNECTIONS),
        ),
        wallet=WalletConfig(
            listen=_endpoint(wallet_t, "wallet", defaults.wallet.listen),
            db=str(wallet_t.get("db", defaults.wallet.db)),
            max_connections=_max_connections(wallet_t, "wallet"),
        ),
        merchant_platform=MerchantPlatformConfig(
            listen=_endpoint(merchant_t, "merchant", defaults.merchant_platform.listen),
            db=str(merchant_t.get("db", defaults.merchant_platform.db)),
            max_connections=_max_connections(merchant_t, "merchant"),
            authenticate=authenticate,
        ),
        merchants=_records(raw, "merchants", MerchantFixture, DEFAULT_MERCHANTS),
        terminals=_records(raw, "terminals", TerminalFixture, DEFAULT_TERMINALS),
        cards=_records(raw, "cards", CardFixture, DEFAULT_CARDS),
        scheme=_scheme(raw, str(raw.get("pvk", defaults.pvk))),
    )


def _scheme(raw: Mapping[str, Any], default_pvk: str) -> SchemeConfig | None:
    return scheme_from_mapping(_table(raw, "scheme"), default_pvk=default_pvk) if "scheme" in raw else None


def _fixture_table(fixture: MerchantFixture | TerminalFixture | CardFixture) -> dict[str, Any]:
    return {k: v for k, v in dataclasses.asdict(fixture).items() if v is not None}  # TOML has no null: defaults


def config_to_toml(config: AcqsimConfig) -> str:
    """The configuration as a TOML file that :func:`load_config` reads back as the same configuration (to
    start services as processes with a configuration built in code). ``data_dir`` is written absolute; a NAC
    without a status port comes back with the default one (the TOML layout cannot say "none")."""
    nac: dict[str, Any] = {
        "host": config.nac.listen.host,
        "port": config.nac.listen.port,
        "max_connections": config.nac.max_connections,
    }
    if config.nac.status is not None:
        nac["status_port"] = config.nac.status.port
    nac["routes"] = {dst: list(members) for dst, members in config.nac.routes.items()}
    raw: dict[str, Any] = {
        "data_dir": str(config.data_dir.resolve()),
        "acquirer_id": config.acquirer_id,
        "currency": config.currency,
        "pvk": config.pvk,
        "imk_ac": config.imk_ac,
        "bdk": config.bdk,
        "bdk_ksi": config.bdk_ksi,
        "trace": config.trace,
        "tls": config.tls,
        "hsm": {
            "host": config.hsm.listen.host,
            "port": config.hsm.listen.port,
            "lmk_file": config.hsm.lmk_file,
            "allow_clear_import": config.hsm.allow_clear_import,
            "max_connections": config.hsm.max_connections,
            "allowed_clients": {name: list(cmds) for name, cmds in config.hsm.allowed_clients.items()},
            "audit": config.hsm.audit,
        },
        "ledger": {
            "host": config.ledger.listen.host,
            "port": config.ledger.listen.port,
            "db": config.ledger.db,
            "max_connections": config.ledger.max_connections,
        },
        "frontend": {
            "host": config.frontend.listen.host,
            "port": config.frontend.listen.port,
            "db": config.frontend.db,
            "max_connections": config.frontend.max_connections,
            "instances": config.frontend.instances,
        },
        "nac": nac,
        "wallet": {
            "host": config.wallet.listen.host,
            "port": config.wallet.listen.port,
            "db": config.wallet.db,
            "max_connections": config.wallet.max_connections,
        },
        "merchant": {
            "host": config.merchant_platform.listen.host,
            "port": config.merchant_platform.listen.port,
            "db": config.merchant_platform.db,
            "max_connections": config.merchant_platform.max_connections,
            "authenticate": config.merchant_platform.authenticate,
        },
        "merchants": [_fixture_table(m) for m in config.merchants],
        "terminals": [_fixture_table(t) for t in config.terminals],
        "cards": [_fixture_table(c) for c in config.cards],
    }
    if config.scheme is not None:
        raw["scheme"] = scheme_to_mapping(config.scheme)
    return tomli_w.dumps(raw)


def load_config(path: Path | None) -> AcqsimConfig:
    """Read a TOML configuration; ``None`` gives the built-in default."""
    if path is None:
        return AcqsimConfig.default()
    try:
        text = path.read_text(encoding="utf-8")
        raw = tomllib.loads(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:  # TOML errors name line and column
        raise ConfigError(f"cannot read configuration {path}: {exc}") from None
    _refuse_unknown(raw, path, text)
    try:
        return config_from_mapping(raw, base_dir=path.parent)
    except ConfigError as exc:
        line = line_of(text, exc.table, exc.key)
        raise ConfigError(f"{path}:{line}: {exc}" if line else f"{path}: {exc}", table=exc.table, key=exc.key) from None


def line_of(text: str, table: str, key: str) -> int | None:
    """The line of ``key`` in ``[table]`` (top level when ``table`` is empty; the table's header when ``key``
    is), by a plain scan of the TOML text (tomllib keeps no positions)."""
    current = ""
    for number, row in enumerate(text.splitlines(), 1):
        stripped = row.strip()
        if stripped.startswith("["):
            current = stripped.strip("[]").strip()
            if current == table and not key:
                return number
            continue
        if current == table and key and stripped.split("=")[0].strip().strip('"') == key:
            return number
    return None
