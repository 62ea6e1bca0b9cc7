"""The terminal registry: which terminals and merchants may transact, and their keys under the LMK.

The front-end never holds the LMK nor a clear key: each terminal's TMK and the PVK come from the key store
(:mod:`acqkit.keystore`) as cryptograms under the HSM's LMK, put there by the key ceremony through the HSM
(``acqsim up``, ``acqsim keys import``). The terminal and merchant tables come from the configuration. A
configured terminal without a TMK in the store stops the front-end at start-up (:class:`RegistryError`
names the terminals), rather than answering its every request 03 later.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Final

from acqkit.config import AcqsimConfig
from acqkit.keystore import KeyStore

#: Labels of the keys the front-end needs in the key store.
TMK_LABEL_PREFIX: Final = "tmk/"
PVK_LABEL: Final = "pvk"
#: The issuer's IMK-AC (chip cryptograms, KQ) and the MPOS readers' BDK, one label per key set id.
IMK_AC_LABEL: Final = "imk/ac"
BDK_LABEL_PREFIX: Final = "bdk/"
#: The acquirer zone's keys of the link to the scheme switch (with ``[scheme]``; docs/scheme.md).
ZONE_ZAK_LABEL: Final = "zone/zak"
ZONE_ZPK_LABEL: Final = "zone/zpk"
#: Key types those labels must carry.
TMK_TYPE: Final = "TMK"
PVK_TYPE: Final = "PVK"
IMK_AC_TYPE: Final = "IMK"
BDK_TYPE: Final = "BDK"
#: How many missing terminals an error names before it says "and N more".
MAX_NAMED: Final = 5


def tmk_label(terminal_id: str) -> str:
    return TMK_LABEL_PREFIX + terminal_id


def bdk_label(key_set_id: str) -> str:
    return BDK_LABEL_PREFIX + key_set_id.upper()


class RegistryError(Exception):
    """The key store lacks a key the configuration needs (or holds it under another type)."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TerminalEntry:
    terminal_id: str
    merchant_id: str
    tmk_under_lmk: str
    route: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Registry:
    acquirer_id: str
    terminals: dict[str, TerminalEntry]
    merchants: frozenset[str]
    pvk_under_lmk: str
    #: Chip cards' issuer key (KQ), and the DUKPT BDKs by key set id (the KSN's first 5 bytes, hex).
    imk_ac_under_lmk: str
    bdks: dict[str, str]
    #: TEST issuer scripts (one APDU each) by card number, sent in the 72 of a chip card's approvals.
    scripts: dict[str, bytes] = dataclasses.field(default_factory=dict, repr=False)

    @classmethod
    def from_key_store(cls, config: AcqsimConfig, store: KeyStore, where: Path | None = None) -> Registry:
        """The configured terminals with their TMKs from ``store``; raises :class:`RegistryError`."""
        source = f"the key store {where}" if where is not None else "the key store"
        missing, terminals = [], {}
        for t in config.terminals:
            entry = store.get(tmk_label(t.terminal_id))
            if entry is None or entry.key_type != TMK_TYPE:
                missing.append(t.terminal_id)
                continue
            terminals[t.terminal_id] = TerminalEntry(
                terminal_id=t.terminal_id, merchant_id=t.merchant_id, tmk_under_lmk=entry.cryptogram, route=t.route
            )
        if missing:
            named = ", ".join(missing[:MAX_NAMED]) + (
                f" and {len(missing) - MAX_NAMED} more" if len(missing) > MAX_NAMED else ""
            )
            raise RegistryError(
                f"terminal {named} has no TMK ({tmk_label('<terminal id>')}) in {source}: run the key ceremony "
                "(acqsim up does) or `acqsim keys import --label tmk/<terminal id> --type TMK …`"
            )
        pvk = store.get(PVK_LABEL)
        if pvk is None or pvk.key_type != PVK_TYPE:
            raise RegistryError(f"no PVK (label {PVK_LABEL!r}, type {PVK_TYPE}) in {source}")
        imk = store.get(IMK_AC_LABEL)
        if imk is None or imk.key_type != IMK_AC_TYPE:
            raise RegistryError(f"no IMK-AC (label {IMK_AC_LABEL!r}, type {IMK_AC_TYPE}) in {source}")
        bdk = store.get(bdk_label(config.bdk_ksi))
        if bdk is None or bdk.key_type != BDK_TYPE:
            raise RegistryError(f"no BDK (label {bdk_label(config.bdk_ksi)!r}, type {BDK_TYPE}) in {source}")
        return cls(
            acquirer_id=config.acquirer_id,
            terminals=terminals,
            merchants=frozenset(m.merchant_id for m in config.merchants),
            pvk_under_lmk=pvk.cryptogram,
            imk_ac_under_lmk=imk.cryptogram,
            bdks={config.bdk_ksi.upper(): bdk.cryptogram},
            scripts={card.pan: bytes.fromhex(card.script) for card in config.cards if card.script},
        )
