"""The switch and the issuers ``acqsim up`` runs with ``[scheme]`` (docs/scheme.md): their folders, their key
ceremonies and the configuration files their processes read.

Every party has its own HSM with its own LMK (sealed in its own folder, ``data_dir/scheme/<party>/hsm/``). Each
zone's keys are loaded at the HSMs of both ends of its link — the acquirer zone's at the acquirer's HSM
(:func:`acqsim.provision.ceremony_keys`) and the switch's, an issuer zone's at the switch's and that issuer's:
the zone's ZMK formed from two clear TEST components (A4), its ZAK and ZPK imported under it (A6). So each
party's key store and configuration file hold only cryptograms under its own LMK; no clear key or PIN is
written to any file here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import anyio.to_thread
import tomli_w

from acqkit.config import AcqsimConfig
from acqkit.keystore import KeyStore, key_store_path
from acqkit.schemeconfig import SchemeConfig, SchemeIssuerConfig
from acqkit.serving import serving_for
from acqsim.provision import CeremonyError, CeremonyKey, load_keys
from core_ledger.setup import card_seeds, open_store, seed
from hsm_sim.client import HsmClient, KeyType
from scheme.client import ISSUER_TLS_NAME, SWITCH_TLS_NAME

#: The parties' folders under the acquirer's data folder.
SCHEME_DIR: Final = "scheme"
SWITCH_DIR: Final = "switch"
SWITCH_CONFIG: Final = "switch.toml"
SWITCH_JOURNAL: Final = "switch-journal.sqlite3"
ISSUER_CONFIG: Final = "issuer.toml"
ISSUER_LEDGER_DB: Final = "ledger.sqlite3"
LMK_FILE: Final = "hsm/lmk.json"
AUDIT_FILE: Final = "hsm-audit.jsonl"
#: Key store labels in an issuer's store, and per member in the switch's (``zak/<member id>``).
ZAK: Final = "zak"
ZPK: Final = "zpk"
PVK: Final = "pvk"


def switch_dir(config: AcqsimConfig) -> Path:
    return config.data_dir / SCHEME_DIR / SWITCH_DIR


def issuer_dir(config: AcqsimConfig, issuer: SchemeIssuerConfig) -> Path:
    return config.data_dir / SCHEME_DIR / issuer.name


def seed_issuer_ledger(config: AcqsimConfig, issuer: SchemeIssuerConfig) -> int:
    """Open the issuer's own book (SQLite in its folder) with the ``[[cards]]`` of its BINs, before its ledger
    process starts (it then runs with ``--no-seed``); cards already there are left alone. Returns how many were
    added. Only PANs, expiry dates, statuses and balances go in: the cards' PINs and PVVs stay in the TEST
    configuration."""
    folder = issuer_dir(config, issuer)
    folder.mkdir(parents=True, exist_ok=True)
    store = open_store(str(folder / ISSUER_LEDGER_DB))
    try:
        cards = card_seeds(c for c in config.cards if issuer.issues(c.pan))
        return seed(store, store.load(), cards=cards)
    finally:
        store.close()


def _key(label: str, key_type: KeyType, clear_hex: str, zmk_hex: str | None = None) -> CeremonyKey:
    return CeremonyKey(label, key_type, bytes.fromhex(clear_hex), bytes.fromhex(zmk_hex) if zmk_hex else None)


def issuer_keys(issuer: SchemeIssuerConfig) -> Iterator[CeremonyKey]:
    """Its end of its zone with the switch, and the PVK its cards' PVVs are under."""
    yield _key(ZAK, KeyType.ZAK, issuer.zak, issuer.zmk)
    yield _key(ZPK, KeyType.ZPK, issuer.zpk, issuer.zmk)
    yield _key(PVK, KeyType.PVK, issuer.pvk)


def switch_keys(config: AcqsimConfig, scheme: SchemeConfig) -> Iterator[CeremonyKey]:
    """The switch's end of every zone: the acquirer's, then each issuer's."""
    zones = [(config.acquirer_id, scheme.zmk, scheme.zak, scheme.zpk)]
    zones += [(i.member_id, i.zmk, i.zak, i.zpk) for i in scheme.issuers]
    for member, zmk, zak, zpk in zones:
        yield _key(f"{ZAK}/{member}", KeyType.ZAK, zak, zmk)
        yield _key(f"{ZPK}/{member}", KeyType.ZPK, zpk, zmk)


def _cryptogram(store: KeyStore, label: str) -> str:
    entry = store.get(label)
    if entry is None:
        raise CeremonyError(f"{label} is missing from the key store after the ceremony")
    return entry.cryptogram


def _write_toml(path: Path, raw: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "# written by acqsim up from the [scheme] configuration: keys are cryptograms under this party's LMK\n"
        + tomli_w.dumps(raw),
        encoding="utf-8",
    )


async def _connect(endpoint_host: str, endpoint_port: int, config: AcqsimConfig, identity: str) -> HsmClient:
    tls = serving_for(identity, tls_dir=None, max_connections=None, config=config).client_tls
    return await HsmClient.connect(endpoint_host, endpoint_port, tls=tls)


async def provision_issuer(config: AcqsimConfig, issuer: SchemeIssuerConfig) -> Path:
    """The issuer's key ceremony at its own HSM (as ``issuer``), then its host's configuration file."""
    assert config.scheme is not None
    folder = issuer_dir(config, issuer)
    async with await _connect(issuer.hsm.host, issuer.hsm.port, config, ISSUER_TLS_NAME) as hsm:
        store = await load_keys(issuer_keys(issuer), hsm, key_store_path(folder))
    path = folder / ISSUER_CONFIG
    raw = {
        "issuer_id": issuer.member_id,
        "switch_id": config.scheme.switch_id,
        "listen": str(issuer.listen),
        "hsm": str(issuer.hsm),
        "ledger": str(issuer.ledger),
        **{label: _cryptogram(store, label) for label in (ZAK, ZPK, PVK)},
    }
    await anyio.to_thread.run_sync(_write_toml, path, raw)
    return path


async def provision_switch(config: AcqsimConfig) -> Path:
    """The switch's key ceremony at its own HSM (as ``scheme``), then its configuration file: every member with
    its zone keys (issuers with where their hosts listen), and the issuers' BINs."""
    scheme = config.scheme
    assert scheme is not None
    folder = switch_dir(config)
    async with await _connect(scheme.hsm.host, scheme.hsm.port, config, SWITCH_TLS_NAME) as hsm:
        store = await load_keys(switch_keys(config, scheme), hsm, key_store_path(folder))

    def member(institution_id: str, name: str, issuer: SchemeIssuerConfig | None) -> dict[str, str]:
        entry = {
            "institution_id": institution_id,
            "name": name,
            "zak": _cryptogram(store, f"{ZAK}/{institution_id}"),
            "zpk": _cryptogram(store, f"{ZPK}/{institution_id}"),
        }
        return entry | ({"issuer": str(issuer.listen)} if issuer is not None else {})

    raw: dict[str, Any] = {
        "switch_id": scheme.switch_id,
        "listen": str(scheme.listen),
        "hsm": str(scheme.hsm),
        "journal": SWITCH_JOURNAL,
        "members": [member(config.acquirer_id, "ACQSIM TEST ACQUIRER", None)]
        + [member(i.member_id, f"ACQSIM TEST {i.name.upper()}", i) for i in scheme.issuers],
        "bins": [
            {"prefix": prefix, "issuer_id": issuer.member_id, "card_type": card_type}
            for issuer in scheme.issuers
            for prefixes, card_type in ((issuer.debit_bins, "D"), (issuer.credit_bins, "C"))
            for prefix in prefixes
        ],
    }
    if scheme.stand_in_limit is not None:
        raw["stand_in_limit"] = scheme.stand_in_limit
    if scheme.issuer_timeout_s is not None:
        raw["issuer_timeout_s"] = scheme.issuer_timeout_s
    path = folder / SWITCH_CONFIG
    await anyio.to_thread.run_sync(_write_toml, path, raw)
    return path


def issuer_pid(config: AcqsimConfig, issuer: SchemeIssuerConfig) -> int | None:
    """The pid of the process serving ``issuer`` (the one whose command line names its configuration file),
    read from /proc (Linux); ``None`` when none runs."""
    marker = str(issuer_dir(config, issuer) / ISSUER_CONFIG).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker in argv:
            return int(entry.name)
    return None
