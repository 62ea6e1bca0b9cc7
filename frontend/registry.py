"""The terminal registry: which terminals and merchants may transact, and their keys under the LMK.

A real front-end stores only the under-LMK form of each TMK, loaded at a key ceremony. acqsim's
configuration ships clear TEST keys so that any client can transact; this module performs the simulated
ceremony once at start-up (clear TEST key → key under the configured test LMK) and keeps nothing else.
"""

from __future__ import annotations

import dataclasses

from acqkit.config import AcqsimConfig
from hsm_sim.cli import lmk_from_arg
from hsm_sim.keys import KeyType, encrypt_under_lmk


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

    @classmethod
    def from_config(cls, config: AcqsimConfig) -> Registry:
        lmk = lmk_from_arg(config.hsm.lmk)
        terminals = {
            t.terminal_id: TerminalEntry(
                terminal_id=t.terminal_id,
                merchant_id=t.merchant_id,
                tmk_under_lmk=encrypt_under_lmk(lmk, KeyType.TMK, bytes.fromhex(t.tmk)),
                route=t.route,
            )
            for t in config.terminals
        }
        return cls(
            acquirer_id=config.acquirer_id,
            terminals=terminals,
            merchants=frozenset(m.merchant_id for m in config.merchants),
            pvk_under_lmk=encrypt_under_lmk(lmk, KeyType.PVK, bytes.fromhex(config.pvk)),
        )
