"""Keys under the LMK are unwrapped once and kept by cryptogram (bounded); a wrong-type cryptogram is refused
every time, also after the same cryptogram was unwrapped under its right type."""

from __future__ import annotations

import pytest

from hsm_sim.keys import (
    DEFAULT_TEST_LMK,
    UNWRAPPED_KEYS_CACHED,
    KeyParityError,
    KeyType,
    _unwrap,
    decrypt_under_lmk,
    encrypt_under_lmk,
)

TEST_TAK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")  # TEST key, odd parity


def test_a_kept_key_is_the_same_key_and_the_cache_is_bounded() -> None:
    token = encrypt_under_lmk(DEFAULT_TEST_LMK, KeyType.TAK, TEST_TAK)
    hits = _unwrap.cache_info().hits
    assert decrypt_under_lmk(DEFAULT_TEST_LMK, KeyType.TAK, token) == TEST_TAK
    assert decrypt_under_lmk(DEFAULT_TEST_LMK, KeyType.TAK, token) == TEST_TAK
    assert _unwrap.cache_info().hits > hits
    assert _unwrap.cache_info().maxsize == UNWRAPPED_KEYS_CACHED


def test_a_wrong_type_is_refused_after_the_right_one_was_kept() -> None:
    token = encrypt_under_lmk(DEFAULT_TEST_LMK, KeyType.TAK, TEST_TAK)
    assert decrypt_under_lmk(DEFAULT_TEST_LMK, KeyType.TAK, token) == TEST_TAK
    for _ in range(2):
        with pytest.raises(KeyParityError):
            decrypt_under_lmk(DEFAULT_TEST_LMK, KeyType.TPK, token)
