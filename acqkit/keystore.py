"""The key store: every key a host service holds, as a cryptogram under the HSM's LMK — never a clear key.

One JSON file per data folder (``<data_dir>/keys/keystore.json``, :func:`key_store_path`), written by the key
ceremony (``acqsim up`` / ``acqsim demo`` / the pipelines), by ``acqsim keys import|generate`` and by
``acqsim hsm lmk rotate``; read by the front-end at start-up. Layout (version 1)::

    {"format": "acqsim-keystore", "version": 1, "lmk_kcv": "16H (the HSM's NC answer)",
     "keys": [{"label": "tmk/10000001", "type": "TMK", "cryptogram": "U+32H", "kcv": "6H",
               "source": "components" | "zmk:<label>" | "generated" | "rotated", "created": "ISO 8601 UTC"}]}

``lmk_kcv`` names the LMK every cryptogram is under, so a store meeting an HSM with another LMK is refused
with both check values instead of failing later as parity errors. Labels are ``kind/name`` (``tmk/10000001``,
``zmk/bank-a``) or a bare kind (``pvk``). Writes are atomic (temporary file, fsync, rename). A file that is
not a key store, of another version, or with a malformed entry raises :class:`KeyStoreError` naming the file
and the entry.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

KEY_STORE_FORMAT: Final = "acqsim-keystore"
KEY_STORE_VERSION: Final = 1
KEY_STORE_FILE: Final = Path("keys") / "keystore.json"
#: Suffix of the translated store an LMK rotation writes before it commits (``hsm_sim/rotation.py``).
PENDING_SUFFIX: Final = ".rotating"

#: A key under the LMK: scheme ``U`` (double length) + 32 hex characters.
CRYPTOGRAM_RE: Final = re.compile(r"^U[0-9A-F]{32}$")
#: The key check value kept per key: the first 3 bytes (6 hex) of the key encrypting zeros.
KCV_HEX_LEN: Final = 6
KCV_RE: Final = re.compile(r"^[0-9A-F]{6}$")
LMK_KCV_RE: Final = re.compile(r"^[0-9A-F]{16}$")
LABEL_RE: Final = re.compile(r"^[a-z][a-z0-9]*(/[A-Za-z0-9._-]+)?$")
KEY_TYPE_RE: Final = re.compile(r"^[A-Z]{3}$")

#: How a key entered the store.
SOURCE_COMPONENTS: Final = "components"  # formed from clear components (HSM A4)
SOURCE_GENERATED: Final = "generated"  # generated inside the HSM (A0)
SOURCE_ROTATED: Final = "rotated"  # translated to a new LMK (HSM BW)
SOURCE_ZMK_PREFIX: Final = "zmk:"  # imported under the named ZMK (HSM A6)
_SOURCE_RE: Final = re.compile(r"^(components|generated|rotated|zmk:[a-z][a-z0-9]*(/[A-Za-z0-9._-]+)?)$")


class KeyStoreError(Exception):
    """The key store cannot be read, is not a key store, or holds a malformed entry."""

    def __init__(self, path: Path | None, reason: str) -> None:
        super().__init__(f"key store {path}: {reason}" if path is not None else f"key store: {reason}")
        self.path = path
        self.reason = reason


def key_store_path(data_dir: Path) -> Path:
    return data_dir / KEY_STORE_FILE


def short_kcv(kcv: str) -> str:
    """The stored form of a check value: its first 6 hex characters, upper case."""
    return kcv[:KCV_HEX_LEN].upper()


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class KeyEntry:
    label: str
    key_type: str
    cryptogram: str  # U + 32H under the LMK
    kcv: str  # 6H
    source: str
    created: str

    def __post_init__(self) -> None:
        problem = (
            "label must be kind or kind/name (lower-case kind)"
            if not LABEL_RE.match(self.label)
            else "type must be three capitals (TMK, PVK, ZMK, …)"
            if not KEY_TYPE_RE.match(self.key_type)
            else "cryptogram must be U + 32 upper-case hex (a key under the LMK)"
            if not CRYPTOGRAM_RE.match(self.cryptogram)
            else "kcv must be 6 upper-case hex"
            if not KCV_RE.match(self.kcv)
            else f"unknown source {self.source!r}"
            if not _SOURCE_RE.match(self.source)
            else None
        )
        if problem is not None:
            raise KeyStoreError(None, f"entry {self.label!r}: {problem}")

    def to_json(self) -> dict[str, str]:
        return {
            "label": self.label,
            "type": self.key_type,
            "cryptogram": self.cryptogram,
            "kcv": self.kcv,
            "source": self.source,
            "created": self.created,
        }


@dataclasses.dataclass(frozen=True, slots=True)
class KeyStore:
    """The keys by label, and the check value of the LMK they are all under (``""`` while empty)."""

    lmk_kcv: str = ""
    entries: Mapping[str, KeyEntry] = dataclasses.field(default_factory=dict)

    def get(self, label: str) -> KeyEntry | None:
        return self.entries.get(label)

    def with_entries(self, entries: Iterable[KeyEntry], *, lmk_kcv: str) -> KeyStore:
        """A new store with ``entries`` added or replaced, all under the LMK ``lmk_kcv``."""
        if self.entries and lmk_kcv != self.lmk_kcv:
            raise KeyStoreError(None, f"keys under LMK {self.lmk_kcv} cannot be mixed with keys under LMK {lmk_kcv}")
        merged = dict(self.entries)
        merged.update((entry.label, entry) for entry in entries)
        return KeyStore(lmk_kcv, merged)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": KEY_STORE_FORMAT,
            "version": KEY_STORE_VERSION,
            "lmk_kcv": self.lmk_kcv,
            "keys": [self.entries[label].to_json() for label in sorted(self.entries)],
        }

    @classmethod
    def from_json(cls, document: object, path: Path | None = None) -> KeyStore:
        if not isinstance(document, dict) or document.get("format") != KEY_STORE_FORMAT:
            raise KeyStoreError(path, f"not an {KEY_STORE_FORMAT} file")
        if document.get("version") != KEY_STORE_VERSION:
            raise KeyStoreError(path, f"unsupported version {document.get('version')!r}")
        lmk_kcv, keys = document.get("lmk_kcv"), document.get("keys")
        if not isinstance(lmk_kcv, str) or (lmk_kcv and not LMK_KCV_RE.match(lmk_kcv)):
            raise KeyStoreError(path, "lmk_kcv must be 16 upper-case hex")
        if not isinstance(keys, list):
            raise KeyStoreError(path, "keys must be a list")
        entries: dict[str, KeyEntry] = {}
        for index, raw in enumerate(keys):
            if not isinstance(raw, dict) or not all(isinstance(raw.get(k), str) for k in _ENTRY_FIELDS):
                raise KeyStoreError(path, f"entry {index}: needs string fields {', '.join(_ENTRY_FIELDS)}")
            try:
                entry = KeyEntry(
                    label=raw["label"],
                    key_type=raw["type"],
                    cryptogram=raw["cryptogram"],
                    kcv=raw["kcv"],
                    source=raw["source"],
                    created=raw["created"],
                )
            except KeyStoreError as exc:
                raise KeyStoreError(path, f"entry {index}: {exc.reason}") from None
            if entry.label in entries:
                raise KeyStoreError(path, f"entry {index}: label {entry.label!r} appears twice")
            entries[entry.label] = entry
        if entries and not lmk_kcv:
            raise KeyStoreError(path, "keys without the check value of the LMK they are under")
        return cls(lmk_kcv, entries)


_ENTRY_FIELDS: Final = ("label", "type", "cryptogram", "kcv", "source", "created")


def read_key_store(path: Path, *, missing_ok: bool = False) -> KeyStore:
    """The store at ``path``; a missing file is an empty store only with ``missing_ok``."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if missing_ok:
            return KeyStore()
        raise KeyStoreError(path, "not found (the key ceremony of `acqsim up`, or `acqsim keys import`)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyStoreError(path, f"unreadable: {exc}") from None
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise KeyStoreError(path, f"not JSON: {exc}") from None
    return KeyStore.from_json(document, path)


def write_key_store(path: Path, store: KeyStore) -> None:
    """Write atomically (temporary file, fsync, rename), mode 0600: a reader sees the old or the new store."""
    body = json.dumps(store.to_json(), indent=2) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(body)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def pending_store_path(store_path: Path) -> Path:
    """Where an LMK rotation writes the translated store before renaming it over ``store_path``."""
    return store_path.with_name(store_path.name + PENDING_SUFFIX)


def finish_interrupted_rotation(store_path: Path, live_lmk_kcv: str) -> bool:
    """Complete an LMK rotation that stopped between its LMK and store writes (the pending store is under the
    live LMK: put it in place), or discard one that stopped before (under no live LMK). True if completed."""
    pending = pending_store_path(store_path)
    if not pending.exists():
        return False
    if read_key_store(pending).lmk_kcv == live_lmk_kcv:
        pending.replace(store_path)
        return True
    pending.unlink()
    return False
