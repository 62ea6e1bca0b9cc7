"""The key ceremony: the configuration's TEST keys go into the HSM, and only their cryptograms come back.

Run after the HSM is up and before the front-end starts (``acqsim up``'s supervisor, the in-process pipeline
of ``acqsim demo``/``acqsim load``/tests, and so chaos and bench, which start ``acqsim up``). For every
configured terminal (label ``tmk/<terminal id>``, type TMK; its merchant-link key ``mlk/<terminal id>``, type
HMK) and the PVK (label ``pvk``):

- the key store already holds it with the same key check value → kept as it is (a restart re-imports nothing);
- otherwise the clear TEST key is split into two clear components and formed inside the HSM (A4), which the
  HSM accepts only because the TEST configuration says ``[hsm] allow_clear_import = true``; the HSM's check
  value must match the TEST key's, and the cryptogram goes into the store.

A store whose keys are under another LMK than the HSM's is refused, naming both check values (a store from
another data folder, say): never silently replaced. A rotation interrupted after its new LMK went live is
completed first (the translated store is put in place). The clear TEST keys are terminal-side
material from the configuration; the LMK is never here.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Final

import anyio
import anyio.to_thread

from acqkit.config import AcqsimConfig
from acqkit.keystore import (
    SOURCE_COMPONENTS,
    SOURCE_ZMK_PREFIX,
    KeyEntry,
    KeyStore,
    KeyStoreError,
    finish_interrupted_rotation,
    read_key_store,
    short_kcv,
    utc_now,
    write_key_store,
)
from frontend.registry import IMK_AC_LABEL, PVK_LABEL, ZONE_ZAK_LABEL, ZONE_ZPK_LABEL, bdk_label, tmk_label
from hsm_sim.client import HsmClient, HsmError, KeyType
from merchant.client import link_key_label
from wire.merchantlink import derive_test_link_key
from wire.paycrypto import key_check_value, tdes_ecb_encrypt, with_odd_parity, xor

#: The whole ceremony's deadline (each HSM command also has the client's own timeout).
CEREMONY_TIMEOUT_S: Final = 60.0
#: payShield's answer to a disabled command: here, A4 on an HSM without allow_clear_import.
COMMAND_DISABLED: Final = "68"


class CeremonyError(Exception):
    """The keys could not be loaded: the HSM refused, a check value differs, or the store is under another LMK."""


@dataclasses.dataclass(frozen=True, slots=True)
class CeremonyKey:
    label: str
    key_type: KeyType
    clear: bytes = dataclasses.field(repr=False)
    #: A working key (ZAK, ZPK) enters an HSM only under a key-encrypting key: the clear TEST ZMK of its zone,
    #: itself formed from components (A4); the key is then imported under it (A6). ``None``: formed by A4.
    zmk: bytes | None = dataclasses.field(default=None, repr=False)

    @property
    def kcv(self) -> str:
        return short_kcv(key_check_value(self.clear).hex())


def ceremony_keys(config: AcqsimConfig) -> Iterator[CeremonyKey]:
    """The keys the front-end and the merchant platform need, from the TEST configuration: per terminal its TMK
    and its merchant-link key (type HMK: the HSM MACs with it, M6/M8 HMAC-SHA-256/64; derived from the TEST
    TMK as the terminal derives it, :func:`wire.merchantlink.derive_test_link_key`)."""
    for terminal in config.terminals:
        yield CeremonyKey(tmk_label(terminal.terminal_id), KeyType.TMK, bytes.fromhex(terminal.tmk))
        link_key = derive_test_link_key(terminal.tmk)
        yield CeremonyKey(link_key_label(terminal.terminal_id), KeyType.HMK, link_key)
    yield CeremonyKey(PVK_LABEL, KeyType.PVK, bytes.fromhex(config.pvk))
    yield CeremonyKey(IMK_AC_LABEL, KeyType.MK_AC, bytes.fromhex(config.imk_ac))
    yield CeremonyKey(bdk_label(config.bdk_ksi), KeyType.BDK, bytes.fromhex(config.bdk))
    if config.scheme is not None:  # the acquirer's end of its zone with the scheme switch
        zmk = bytes.fromhex(config.scheme.zmk)
        yield CeremonyKey(ZONE_ZAK_LABEL, KeyType.ZAK, bytes.fromhex(config.scheme.zak), zmk)
        yield CeremonyKey(ZONE_ZPK_LABEL, KeyType.ZPK, bytes.fromhex(config.scheme.zpk), zmk)


def split_into_components(key: bytes) -> tuple[str, str]:
    """Two clear components with odd parity whose XOR, parity forced odd (as A4 forms a key), is ``key``."""
    first = with_odd_parity(secrets.token_bytes(len(key)))
    second = with_odd_parity(xor(key, first))
    return first.hex().upper(), second.hex().upper()


async def key_ceremony(config: AcqsimConfig, hsm: HsmClient, store_path: Path | None = None) -> KeyStore:
    """Load the configuration's TEST keys through ``hsm`` into the key store; return the store."""
    path = store_path if store_path is not None else config.key_store_path
    return await load_keys(ceremony_keys(config), hsm, path)


async def load_keys(keys: Iterable[CeremonyKey], hsm: HsmClient, path: Path) -> KeyStore:
    """Form ``keys`` inside ``hsm`` and keep their cryptograms in the key store at ``path`` (any party's: the
    acquirer's, the switch's, an issuer's); a key already there with the same check value is kept."""
    with anyio.fail_after(CEREMONY_TIMEOUT_S):
        lmk_kcv = await hsm.diagnostics()
        try:
            await anyio.to_thread.run_sync(finish_interrupted_rotation, path, lmk_kcv)
            store = read_key_store(path, missing_ok=True)
        except KeyStoreError as exc:
            raise CeremonyError(str(exc)) from None
        if store.entries and store.lmk_kcv != lmk_kcv:
            raise CeremonyError(
                f"the key store {path} holds keys under LMK {store.lmk_kcv}, but the HSM's LMK is {lmk_kcv}: "
                "use the data folder they belong to or the LMK file they were made under (an lmk.json.*.bak backup), "
                "or import the keys again"
            )
        formed: dict[tuple[KeyType, bytes], str] = {}
        added: list[KeyEntry] = []
        for key in keys:
            held = store.get(key.label)
            if held is not None and held.key_type == key.key_type and held.kcv == key.kcv:
                continue
            cryptogram = formed.get((key.key_type, key.clear))
            if cryptogram is None:  # the same key (load terminals share one TMK) is formed once
                if key.zmk is None:
                    cryptogram = await _form(hsm, key)
                else:
                    zmk = formed.get((KeyType.ZMK, key.zmk))
                    if zmk is None:
                        zmk = await _form(hsm, CeremonyKey(f"{key.label} (its zone's ZMK)", KeyType.ZMK, key.zmk))
                        formed[(KeyType.ZMK, key.zmk)] = zmk
                    cryptogram = await _import(hsm, key, zmk)
                formed[(key.key_type, key.clear)] = cryptogram
            added.append(
                KeyEntry(
                    label=key.label,
                    key_type=key.key_type.value,
                    cryptogram=cryptogram,
                    kcv=key.kcv,
                    source=SOURCE_COMPONENTS if key.zmk is None else f"{SOURCE_ZMK_PREFIX}zone",
                    created=utc_now(),
                )
            )
    if not added:
        return store
    store = store.with_entries(added, lmk_kcv=lmk_kcv)
    await anyio.to_thread.run_sync(write_key_store, path, store)
    return store


async def _form(hsm: HsmClient, key: CeremonyKey) -> str:
    try:
        formed = await hsm.form_key_from_components(key.key_type, split_into_components(key.clear))
    except HsmError as exc:
        if exc.error_code == COMMAND_DISABLED:
            raise CeremonyError(
                f"{key.label}: the HSM refuses clear components ([hsm] allow_clear_import = false); import the "
                "key under a ZMK instead: acqsim keys import --under-zmk …"
            ) from None
        raise CeremonyError(f"{key.label}: {exc}") from None
    if short_kcv(formed.kcv) != key.kcv:
        raise CeremonyError(
            f"{key.label}: the HSM formed a key with check value {short_kcv(formed.kcv)}, not {key.kcv}"
        )
    return formed.under_lmk


async def _import(hsm: HsmClient, key: CeremonyKey, zmk_under_lmk: str) -> str:
    """A6: ``key`` travels under its zone's clear TEST ZMK and comes back under the HSM's LMK."""
    assert key.zmk is not None
    try:
        imported = await hsm.import_key(key.key_type, zmk_under_lmk, tdes_ecb_encrypt(key.zmk, key.clear).hex().upper())
    except HsmError as exc:
        raise CeremonyError(f"{key.label}: {exc}") from None
    if short_kcv(imported.kcv) != key.kcv:
        raise CeremonyError(
            f"{key.label}: the HSM imported a key with check value {short_kcv(imported.kcv)}, not {key.kcv}"
        )
    return imported.under_lmk
