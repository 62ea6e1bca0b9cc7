"""The secrets scan (issue #15): every file a run wrote, and everything it printed, searched for every TEST
secret in each form it could take. Shared by the demo-day tests and the key-custody test."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from acqkit.config import TEST_PVK, AcqsimConfig
from wire.masking import mask_pan
from wire.merchantlink import derive_test_link_key
from wire.paycrypto import build_pin_block

#: The ledger's store is the card issuer's own book: its accounts are keyed by the card number (the one place
#: a PAN is the data itself, as in an issuer's card database). Everything else a run writes is scanned.
ISSUER_BOOK: Final = re.compile(r"ledger\.sqlite3(-wal|-shm|-journal)?$")


def _needles() -> dict[str, list[bytes]]:
    """Every TEST secret, in each form it could be written in: PANs (ASCII digits, also inside longer digit runs,
    and packed BCD), clear ISO-0 PIN blocks (hex and bytes), PINs after a 'PIN' label, clear keys (each half, hex
    in either case and raw bytes)."""
    config = AcqsimConfig.default()
    needles: dict[str, list[bytes]] = {}
    for card in config.cards:
        name = mask_pan(card.pan)
        bcd = bytes.fromhex(card.pan + ("F" if len(card.pan) % 2 else ""))
        needles[f"PAN {name}"] = [card.pan.encode(), bcd]
        block = build_pin_block(card.pin, card.pan)
        needles[f"clear PIN block of {name}"] = [block, block.hex().encode(), block.hex().upper().encode()]
        needles[f"PIN of {name}"] = [f"PIN {card.pin}".encode(), f'"pin": "{card.pin}"'.encode()]
    link_keys = [derive_test_link_key(t.tmk).hex() for t in config.terminals]  # the merchant-link keys
    keys = [t.tmk for t in config.terminals] + [TEST_PVK, config.imk_ac, config.bdk, *link_keys]
    for key in keys:
        for half in (key[:16], key[16:]):
            needles[f"key half {half}"] = [half.upper().encode(), half.lower().encode(), bytes.fromhex(half)]
    return needles


def secrets_in(folder: Path, printed: str, extra: Mapping[str, list[bytes]] | None = None) -> list[str]:
    """Every (file, secret) found in what a run wrote under ``folder`` and printed, the issuer's book aside;
    ``extra`` adds needles (the run's LMK, its passphrase)."""
    found = []
    needles = {**_needles(), **(extra or {})}
    sources = [(path, path.read_bytes()) for path in folder.rglob("*") if path.is_file()]
    for path, data in [*sources, (Path("<printed>"), printed.encode())]:
        if ISSUER_BOOK.search(path.name):
            continue
        found += [f"{path}: {name}" for name, forms in needles.items() if any(form in data for form in forms)]
    return found
