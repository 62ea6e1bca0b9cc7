"""EMV / PBOC cryptograms: the published PBOC example of PROTOCOL.md §7, and pyemv as an independent oracle.

pyemv calls cryptography's TripleDES from its deprecated location, so its calls run with warnings silenced
locally (pytest turns warnings into errors everywhere else).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wire.emv import (
    SessionKeyMethod,
    arpc_method_1,
    arpc_method_2,
    derive_icc_master_key,
    derive_session_key,
    generate_ac,
    pad_method_2,
)
from wire.paycrypto import CryptoInputError, with_odd_parity

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import pyemv.ac
    import pyemv.kd

T = TypeVar("T")


def oracle(call: Callable[[], T]) -> T:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return call()


# PROTOCOL.md §7, the published PBOC example.
IMK_AC = bytes.fromhex("F0C34A8124CEE0A91A0B034AA97D6EAC")
PAN, PSN, ATC = "6228000100001", "01", bytes.fromhex("0240")
CDOL_DATA = bytes.fromhex("000000000001000000000000015600800460000156140701001E78EEBC7D00024003A04002")


def test_the_published_pboc_example() -> None:
    card_key = derive_icc_master_key(IMK_AC, PAN, PSN)
    assert card_key.hex().upper() == "014C986ECD8F49157CC8B59E3BCDFD98"
    session_key = derive_session_key(card_key, ATC, SessionKeyMethod.PBOC)
    assert session_key.hex().upper() == "D4102725E6E5AD329E55AAB50BF23DA9"
    arqc = generate_ac(session_key, CDOL_DATA)
    assert arqc.hex().upper() == "5D016C91005E7CC2"
    assert arpc_method_1(session_key, arqc, b"01").hex().upper() == "21415243527CE78F"


def test_the_imk_parity_bits_do_not_change_the_card_key() -> None:
    # The HSM stores the IMK with odd parity (its LMK scheme requires it); DES ignores those bits.
    assert derive_icc_master_key(with_odd_parity(IMK_AC), PAN, PSN) == derive_icc_master_key(IMK_AC, PAN, PSN)


def test_padding_method_2_always_adds_a_byte() -> None:
    assert pad_method_2(b"") == bytes.fromhex("8000000000000000")
    assert pad_method_2(bytes(8)) == bytes(8) + bytes.fromhex("8000000000000000")
    assert len(pad_method_2(bytes(7))) == 8


keys = st.binary(min_size=16, max_size=16)
pans = st.text("0123456789", min_size=12, max_size=19)
psns = st.text("0123456789", min_size=2, max_size=2)
atcs = st.binary(min_size=2, max_size=2)


@given(imk=keys, pan=pans, psn=psns)
def test_option_a_agrees_with_pyemv(imk: bytes, pan: str, psn: str) -> None:
    assert derive_icc_master_key(imk, pan, psn) == oracle(lambda: pyemv.kd.derive_icc_mk_a(imk, pan, psn))


@given(mk=keys, atc=atcs)
def test_emv_common_session_key_agrees_with_pyemv(mk: bytes, atc: bytes) -> None:
    ours = derive_session_key(mk, atc, SessionKeyMethod.EMV_COMMON)
    assert ours == oracle(lambda: pyemv.kd.derive_common_sk(mk, atc + bytes(6)))


arcs = st.binary(min_size=2, max_size=2)
csus = st.binary(min_size=4, max_size=4)


@given(sk=keys, data=st.binary(max_size=64), arc=arcs, csu=csus)
def test_ac_and_arpc_agree_with_pyemv(sk: bytes, data: bytes, arc: bytes, csu: bytes) -> None:
    arqc = generate_ac(sk, data)
    assert arqc == oracle(lambda: pyemv.ac.generate_ac(sk, data, pyemv.ac.PaddingType.EMV))
    assert arpc_method_1(sk, arqc, arc) == oracle(lambda: pyemv.ac.generate_arpc_1(sk, arqc, arc))
    assert arpc_method_2(sk, arqc, csu) == oracle(lambda: pyemv.ac.generate_arpc_2(sk, arqc, csu))


@given(mk=keys, atc=atcs)
def test_pboc_session_key_halves_follow_the_atc_and_its_complement(mk: bytes, atc: bytes) -> None:
    # No oracle implements PBOC's derivation: check its definition through another route (ECB of both blocks).
    from wire.paycrypto import tdes_ecb_encrypt

    expected = tdes_ecb_encrypt(mk, bytes(6) + atc + bytes(6) + bytes(b ^ 0xFF for b in atc))
    assert derive_session_key(mk, atc, SessionKeyMethod.PBOC) == expected


@pytest.mark.parametrize(
    "call",
    [
        lambda: derive_icc_master_key(bytes(8), PAN, PSN),
        lambda: derive_icc_master_key(IMK_AC, "62280001x", PSN),
        lambda: derive_session_key(bytes(16), b"\x01", SessionKeyMethod.PBOC),
        lambda: arpc_method_1(bytes(16), bytes(7), b"00"),
        lambda: arpc_method_2(bytes(16), bytes(8), bytes(3)),
        lambda: arpc_method_2(bytes(16), bytes(8), bytes(4), bytes(9)),
    ],
)
def test_bad_lengths_are_refused_without_values(call: Callable[[], bytes]) -> None:
    with pytest.raises(CryptoInputError) as info:
        call()
    assert "6228" not in str(info.value)
