"""``acqsim keys import | generate | list``: put keys into the key store through a running HSM, or list it.

    acqsim keys import --label tmk/T0000001 --type TMK --under-zmk zmk/bank --cryptogram 32H --kcv 6H
        a key sent under a ZMK already in the store (HSM A6); the HSM's check value must equal --kcv
    acqsim keys import --label zmk/bank --type ZMK --components N [--kcv 6H]
        a key formed from N clear components (HSM A4), read from the terminal without echo (or one per line
        from stdin): never from the command line, never printed or logged. The HSM refuses (68) unless its
        configuration allows clear import (the TEST configuration does)
    acqsim keys generate --label pvk --type PVK      a new random key generated inside the HSM (A0)
    acqsim keys list [--json]                       label, type, KCV, source, date — never a key

Each run talks to the configuration's HSM (``--hsm HOST:PORT`` overrides), over mutual TLS as the front-end
when ``tls = true``. The store must be under the HSM's LMK (its NC check value). Exit codes: 0 stored/listed,
1 the HSM refused or the check value differs (nothing stored), 2 usage, configuration or store error,
3 the HSM is unreachable.
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import json
import sys
from pathlib import Path
from typing import Final

import anyio

from acqkit.config import CONFIG_HELP, AcqsimConfig, ConfigError, Endpoint, load_config
from acqkit.exitcodes import EXIT_DECLINED, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE
from acqkit.keystore import (
    LABEL_RE,
    SOURCE_COMPONENTS,
    SOURCE_GENERATED,
    SOURCE_ZMK_PREFIX,
    KeyEntry,
    KeyStore,
    KeyStoreError,
    read_key_store,
    short_kcv,
    utc_now,
    write_key_store,
)
from acqkit.runner import backend_options
from acqkit.serving import serving_for
from hsm_sim.client import GeneratedKey, HsmClient, HsmError, HsmUnavailable, KeyType

COMPONENT_HEX_LEN: Final = 32
MAX_COMPONENTS: Final = 9


class KeysUsageError(Exception):
    """A bad argument or store state: exit 2, nothing sent to the HSM."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action",
        choices=("import", "generate", "list"),
        help="import a key through the HSM, have the HSM generate one, or list the key store (never a clear key)",
    )
    parser.add_argument("--config", type=Path, help=CONFIG_HELP)
    parser.add_argument(
        "--data-dir", type=Path, help="where the key store lives (default: the configuration's data folder)"
    )
    parser.add_argument("--key-store", type=Path, help="the key store file (default: <data_dir>/keys/keystore.json)")
    parser.add_argument("--hsm", help="HOST:PORT of the HSM (default: the configuration's)")
    parser.add_argument("--label", help="import/generate: kind/name, e.g. tmk/10000001, zmk/bank, pvk")
    parser.add_argument("--type", choices=[t.value for t in KeyType], help="import/generate: the key type")
    parser.add_argument("--under-zmk", metavar="LABEL", help="import: the ZMK (in the store) the key is sent under")
    parser.add_argument("--cryptogram", metavar="32H", help="import --under-zmk: the key under the ZMK")
    parser.add_argument("--components", type=int, metavar="N", help="import: form from N clear components")
    parser.add_argument("--kcv", help="import: the key's check value (6 hex or more), checked against the HSM's")
    parser.add_argument("--json", action="store_true", help="list: one JSON object per key")


def _config(args: argparse.Namespace) -> AcqsimConfig:
    config = load_config(args.config)
    if args.data_dir is not None:
        config = dataclasses.replace(config, data_dir=args.data_dir)
    return config


def show(store: KeyStore, as_json: bool) -> None:
    for label in sorted(store.entries):
        entry = store.entries[label]
        if as_json:
            print(json.dumps({k: v for k, v in entry.to_json().items() if k != "cryptogram"}))
        else:
            print(f"{entry.label:<24} {entry.key_type}  KCV {entry.kcv}  {entry.source:<16} {entry.created}")
    if not as_json:
        print(f"{len(store.entries)} keys under LMK {store.lmk_kcv or '-'}")


def read_components(count: int) -> list[str]:
    """``count`` clear components from the terminal (no echo) or stdin lines; checked for shape only."""
    interactive = sys.stdin.isatty()
    components = []
    for number in range(1, count + 1):
        text = getpass.getpass(f"component {number} of {count}: ") if interactive else sys.stdin.readline()
        text = text.strip().upper()
        if len(text) != COMPONENT_HEX_LEN or any(c not in "0123456789ABCDEF" for c in text):
            raise KeysUsageError(f"component {number}: give {COMPONENT_HEX_LEN} hex characters")
        components.append(text)
    return components


def _check_request(args: argparse.Namespace, store: KeyStore) -> KeyType:
    if not args.label or not LABEL_RE.match(args.label):
        raise KeysUsageError("--label kind/name is required (lower-case kind: tmk/10000001, zmk/bank, pvk)")
    if not args.type:
        raise KeysUsageError("--type is required")
    if args.action == "import":
        if (args.under_zmk is None) == (args.components is None):
            raise KeysUsageError("import needs either --under-zmk LABEL --cryptogram 32H --kcv KCV or --components N")
        if args.under_zmk is not None:
            zmk = store.get(args.under_zmk)
            if zmk is None or zmk.key_type != KeyType.ZMK:
                raise KeysUsageError(f"no ZMK labelled {args.under_zmk!r} in the key store")
            if not args.cryptogram or len(args.cryptogram) != COMPONENT_HEX_LEN:
                raise KeysUsageError("--cryptogram must be the key under the ZMK, 32 hex characters")
            if not args.kcv:
                raise KeysUsageError("--kcv is required with --under-zmk (the sender's check value)")
        elif not 2 <= args.components <= MAX_COMPONENTS:
            raise KeysUsageError(f"--components must be 2 to {MAX_COMPONENTS}")
    if args.kcv is not None and (len(args.kcv) < 4 or any(c not in "0123456789ABCDEFabcdef" for c in args.kcv)):
        raise KeysUsageError("--kcv must be at least 4 hex characters")
    return KeyType(args.type)


async def _enter(args: argparse.Namespace, hsm: HsmClient, key_type: KeyType, store: KeyStore) -> GeneratedKey:
    if args.action == "generate":
        return await hsm.generate_key(key_type)
    if args.under_zmk is not None:
        zmk = store.entries[args.under_zmk]
        return await hsm.import_key(key_type, zmk.cryptogram, args.cryptogram.upper())
    return await hsm.form_key_from_components(key_type, read_components(args.components))


async def enter_key(args: argparse.Namespace, config: AcqsimConfig, path: Path) -> int:
    store = read_key_store(path, missing_ok=True)
    key_type = _check_request(args, store)
    at = Endpoint.parse(args.hsm) if args.hsm else config.hsm.listen
    tls = serving_for("frontend", tls_dir=None, max_connections=None, config=config).client_tls
    async with await HsmClient.connect(at.host, at.port, tls=tls) as hsm:
        lmk_kcv = await hsm.diagnostics()
        if store.entries and store.lmk_kcv != lmk_kcv:
            raise KeysUsageError(f"the key store is under LMK {store.lmk_kcv}, the HSM's LMK is {lmk_kcv}")
        key = await _enter(args, hsm, key_type, store)
    kcv = short_kcv(key.kcv)
    if args.kcv is not None and not key.kcv.upper().startswith(args.kcv.upper()):
        print(f"acqsim keys: check value mismatch: the HSM computed {kcv}, expected {args.kcv.upper()}; nothing stored")
        return EXIT_DECLINED
    source = (
        SOURCE_GENERATED
        if args.action == "generate"
        else SOURCE_ZMK_PREFIX + args.under_zmk
        if args.under_zmk is not None
        else SOURCE_COMPONENTS
    )
    entry = KeyEntry(
        label=args.label, key_type=key_type.value, cryptogram=key.under_lmk, kcv=kcv, source=source, created=utc_now()
    )
    replaced = args.label in store.entries
    write_key_store(path, store.with_entries([entry], lmk_kcv=lmk_kcv))
    print(f"{'replaced' if replaced else 'stored'} {entry.label} {entry.key_type} KCV {kcv} ({source}) in {path}")
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    try:
        config = _config(args)
        path: Path = args.key_store or config.key_store_path
        if args.action == "list":
            show(read_key_store(path), args.json)
            return EXIT_OK
        backend, options = backend_options()
        code: int = anyio.run(enter_key, args, config, path, backend=backend, backend_options=options)
    except (ConfigError, KeyStoreError, KeysUsageError, ValueError, OSError) as exc:
        print(f"acqsim keys: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except HsmUnavailable as exc:
        print(f"acqsim keys: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except HsmError as exc:
        print(f"acqsim keys: {exc} (nothing stored)", file=sys.stderr)
        return EXIT_DECLINED
    return code
