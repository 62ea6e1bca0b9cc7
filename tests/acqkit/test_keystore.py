"""The key store: a round trip of any valid store, precise errors for a corrupt or foreign file, atomic
writes, and no way to put a clear key in it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from acqkit.keystore import (
    SOURCE_COMPONENTS,
    KeyEntry,
    KeyStore,
    KeyStoreError,
    read_key_store,
    write_key_store,
)

LMK_KCV = "1F2E3D4C5B6A7988"
HEX = "0123456789ABCDEF"


def entry(label: str = "tmk/10000001", **changes: str) -> KeyEntry:
    fields = {
        "label": label,
        "key_type": "TMK",
        "cryptogram": "U" + "AB" * 16,
        "kcv": "08D7B4",
        "source": SOURCE_COMPONENTS,
        "created": "2026-12-04T05:00:00Z",
    }
    fields.update(changes)
    return KeyEntry(**fields)


entries = st.builds(
    lambda name, crypt, kcv, kind, source: entry(
        label=f"{kind}/{name}", cryptogram="U" + crypt, kcv=kcv, key_type=kind.upper(), source=source
    ),
    st.text(alphabet="abc019._-", min_size=1, max_size=12),
    st.text(alphabet=HEX, min_size=32, max_size=32),
    st.text(alphabet=HEX, min_size=6, max_size=6),
    st.sampled_from(["tmk", "zmk", "pvk"]),
    st.sampled_from(["components", "generated", "zmk:zmk/bank"]),
)


@given(st.lists(entries, max_size=8))
def test_any_store_round_trips_through_its_file(items: list[KeyEntry]) -> None:
    store = KeyStore().with_entries(items, lmk_kcv=LMK_KCV)
    assert KeyStore.from_json(json.loads(json.dumps(store.to_json()))) == store


def test_write_is_atomic_and_private(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "keystore.json"
    store = KeyStore().with_entries([entry()], lmk_kcv=LMK_KCV)
    write_key_store(path, store)
    assert read_key_store(path) == store
    assert path.stat().st_mode & 0o777 == 0o600
    assert not list(path.parent.glob("*.tmp"))
    assert read_key_store(tmp_path / "none.json", missing_ok=True) == KeyStore()
    with pytest.raises(KeyStoreError, match="not found"):
        read_key_store(tmp_path / "none.json")


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ("{", "not JSON"),
        ('{"format": "acqsim-lmk", "version": 1}', "not an acqsim-keystore file"),
        ('{"format": "acqsim-keystore", "version": 9, "lmk_kcv": "", "keys": []}', "unsupported version 9"),
        ('{"format": "acqsim-keystore", "version": 1, "lmk_kcv": "", "keys": {}}', "keys must be a list"),
        ('{"format": "acqsim-keystore", "version": 1, "lmk_kcv": "XY", "keys": []}', "lmk_kcv"),
    ],
)
def test_a_foreign_or_corrupt_file_is_a_precise_error(tmp_path: Path, document: str, reason: str) -> None:
    path = tmp_path / "keystore.json"
    path.write_text(document)
    with pytest.raises(KeyStoreError, match=reason) as caught:
        read_key_store(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"cryptogram": "0123456789ABCDEFFEDCBA9876543210"}, "cryptogram must be U"),  # a clear key: refused
        ({"kcv": "08d7b4"}, "kcv"),
        ({"label": "TMK 1"}, "label"),
        ({"source": "typed in"}, "unknown source"),
    ],
)
def test_a_malformed_entry_names_its_index_and_field(tmp_path: Path, changes: dict[str, str], reason: str) -> None:
    good = entry().to_json()
    bad = {**good, **{("type" if k == "key_type" else k): v for k, v in changes.items()}}
    document = {"format": "acqsim-keystore", "version": 1, "lmk_kcv": LMK_KCV, "keys": [good, bad]}
    path = tmp_path / "keystore.json"
    path.write_text(json.dumps(document))
    with pytest.raises(KeyStoreError, match=f"entry 1: .*{reason}"):
        read_key_store(path)


def test_keys_under_two_lmks_never_mix() -> None:
    store = KeyStore().with_entries([entry()], lmk_kcv=LMK_KCV)
    with pytest.raises(KeyStoreError, match="cannot be mixed"):
        store.with_entries([entry("pvk", key_type="PVK")], lmk_kcv="0" * 16)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=6),
    max_leaves=6,
)
key_fields = st.fixed_dictionaries(
    {},
    optional={
        name: st.one_of(json_values, st.just("TMK"), st.just("U" + "0" * 32), st.just("08D7B4"))
        for name in ("label", "type", "cryptogram", "kcv", "source", "created")
    },
)


@given(
    st.fixed_dictionaries(
        {"format": st.just("acqsim-keystore"), "version": st.just(1)},
        optional={"lmk_kcv": st.one_of(json_values, st.just(LMK_KCV)), "keys": st.lists(key_fields, max_size=3)},
    )
    | json_values
)
def test_any_document_is_a_store_or_a_key_store_error(document: object) -> None:
    try:
        store = KeyStore.from_json(document)
    except KeyStoreError:
        return
    assert all(entry.cryptogram.startswith("U") for entry in store.entries.values())
