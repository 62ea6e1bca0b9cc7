"""LMK rotation: a new LMK, and every key of the key store translated to it inside the HSM (BW).

The idea is payShield's: the old LMK goes into key change storage, the new one becomes live, and BW translates
each key from the old to the new. Here one :class:`HsmProcessor` holds both for the length of the rotation and
is asked BW for every entry of the key store; each answer's check value must equal the stored one (only the
wrapping changes, never the key).

Atomic in steps, each leaving a usable pair (LMK file, key store):

1. Translate everything in memory. Any failure (a corrupt cryptogram, a check value that differs) stops here:
   nothing was written; :class:`RotationError` names the key.
2. Copy the old LMK file to ``<name>.<UTC timestamp>.bak`` (kept: the old LMK stays recoverable).
3. Write the translated store beside the old one as ``<store>.rotating`` (its ``lmk_kcv`` names the new LMK).
4. Replace the LMK file with the new LMK (write to a temporary file, fsync, rename) — the commit point.
5. Rename ``<store>.rotating`` over the store.

A crash between 4 and 5 leaves the new LMK and a ``.rotating`` store under it: the next start (the key
ceremony) or rotation completes step 5 first (:func:`acqkit.keystore.finish_interrupted_rotation`). A crash
before 4 leaves a ``.rotating`` store under no live LMK: it is discarded.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
from pathlib import Path
from typing import Final

from acqkit.keystore import (
    KeyStore,
    finish_interrupted_rotation,
    pending_store_path,
    read_key_store,
    short_kcv,
    write_key_store,
)
from hsm_sim.errors import ErrorCode
from hsm_sim.keys import KeyType
from hsm_sim.lmk_store import load_lmk_file, random_lmk, write_lmk_file
from hsm_sim.processor import HsmProcessor

BACKUP_SUFFIX: Final = ".bak"


class RotationError(Exception):
    """A key could not be translated to the new LMK; nothing was changed."""


@dataclasses.dataclass(frozen=True, slots=True)
class RotationResult:
    old_kcv: str
    new_kcv: str
    keys: int
    backup: Path


def translate_store(store: KeyStore, processor: HsmProcessor, new_kcv: str) -> KeyStore:
    """Every entry of ``store`` under the processor's live LMK, by BW; raises :class:`RotationError`."""
    translated = {}
    for label, entry in store.entries.items():
        try:
            code = KeyType(entry.key_type).code
        except ValueError:
            raise RotationError(f"{label}: unknown key type {entry.key_type}") from None
        answer = processor.handle(f"0000BW{code}{entry.cryptogram}".encode("ascii")).decode("ascii")
        error, fields = answer[6:8], answer[8:]
        if error != ErrorCode.OK:
            raise RotationError(f"{label}: the HSM answered BW with error {error}")
        cryptogram, kcv = fields[:33], fields[33:]
        if short_kcv(kcv) != entry.kcv:
            raise RotationError(f"{label}: check value {short_kcv(kcv)} after translation, {entry.kcv} stored")
        translated[label] = dataclasses.replace(entry, cryptogram=cryptogram)
    return KeyStore(new_kcv, translated)


def rotate_lmk(lmk_file: Path, store_path: Path, passphrase: str) -> RotationResult:
    """Rotate the LMK of ``lmk_file`` and translate the key store at ``store_path`` to it (steps above)."""
    old = load_lmk_file(lmk_file, passphrase)
    finish_interrupted_rotation(store_path, old.check_value)
    store = read_key_store(store_path)
    if store.entries and store.lmk_kcv != old.check_value:
        raise RotationError(f"the key store is under LMK {store.lmk_kcv}, the LMK file holds {old.check_value}")
    new = random_lmk()
    translated = translate_store(store, HsmProcessor(new, old_lmk=old), new.check_value)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    backup = lmk_file.with_name(f"{lmk_file.name}.{stamp}{BACKUP_SUFFIX}")
    shutil.copy2(lmk_file, backup)
    pending = pending_store_path(store_path)
    write_key_store(pending, translated)
    write_lmk_file(lmk_file, new, passphrase)
    pending.replace(store_path)
    return RotationResult(old.check_value, new.check_value, len(translated.entries), backup)
