"""A4 (form a key from clear components) and BW (translate a key from the old LMK to the new), in the
sans-IO processor and through the server's audit log."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from acqsim.provision import split_into_components
from hsm_sim.audit import AuditLog
from hsm_sim.client import HsmClient, HsmError
from hsm_sim.keys import DEFAULT_TEST_LMK, KeyType, decrypt_under_lmk, encrypt_under_lmk
from hsm_sim.lmk_store import random_lmk
from hsm_sim.processor import HsmProcessor
from hsm_sim.server import serve
from wire.paycrypto import generate_key, key_check_value, with_odd_parity

LMK = DEFAULT_TEST_LMK
# TEST keys only.
TMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
TMK_KCV = "08D7B4FB629D0885"  # the published 0123…3210 vector
C1 = "1C587F1C13924FEF1C587F1C13924FEF"
C2 = with_odd_parity(bytes(a ^ b for a, b in zip(TMK, bytes.fromhex(C1), strict=True))).hex().upper()


def a4(processor: HsmProcessor, fields: str) -> str:
    return processor.handle(b"0001A4" + fields.encode("ascii")).decode("ascii")


def test_a4_is_disabled_unless_clear_import_is_allowed() -> None:
    assert a4(HsmProcessor(LMK), f"2{KeyType.TMK.code}U{C1}{C2}") == "0001A568"
    _, outcome = HsmProcessor(LMK).process(b"0001A4" + f"2{KeyType.TMK.code}U{C1}{C2}".encode())
    assert "allow_clear_import" in outcome.reason


def test_a4_forms_the_key_whose_components_xor_to_it() -> None:
    answer = a4(HsmProcessor(LMK, allow_clear_import=True), f"2{KeyType.TMK.code}U{C1}{C2}")
    assert answer[:8] == "0001A500"
    assert answer[41:] == TMK_KCV
    assert decrypt_under_lmk(LMK, KeyType.TMK, answer[8:41]) == TMK
    assert C1 not in answer and C2 not in answer and TMK.hex().upper() not in answer


@given(st.binary(min_size=16, max_size=16))
def test_the_ceremony_split_always_forms_the_key_back(seed: bytes) -> None:
    key = with_odd_parity(seed)
    first, second = split_into_components(key)
    answer = a4(HsmProcessor(LMK, allow_clear_import=True), f"2{KeyType.PVK.code}U{first}{second}")
    assert answer[:8] == "0001A500"
    assert answer[41:] == key_check_value(key).hex().upper()


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        (f"1{KeyType.TMK.code}U{C1}", "15"),  # one component is not a ceremony
        (f"2{KeyType.TAK.code}U{C1}{C2}", "15"),  # working keys are generated, not formed
        (f"2{KeyType.TMK.code}U{C1}{'0' * 32}", "10"),  # component 2 has even parity
        (f"2{KeyType.TMK.code}U{C1}{C2[:-1]}", "15"),  # short
        (f"2{KeyType.TMK.code}U{C1}{C2}00", "15"),  # trailing data
        (f"2999U{C1}{C2}", "04"),
    ],
)
def test_a4_refuses_bad_requests_with_payshield_codes(fields: str, code: str) -> None:
    answer = a4(HsmProcessor(LMK, allow_clear_import=True), fields)
    assert answer == f"0001A5{code}"


def test_bw_translates_to_the_new_lmk_keeping_the_check_value() -> None:
    new = random_lmk()
    old_form = encrypt_under_lmk(LMK, KeyType.TMK, TMK)
    assert HsmProcessor(new).handle(f"0001BW{KeyType.TMK.code}{old_form}".encode()) == b"0001BX68"  # no old LMK
    hsm = HsmProcessor(new, old_lmk=LMK)
    answer = hsm.handle(f"0001BW{KeyType.TMK.code}{old_form}".encode()).decode()
    assert answer[:8] == "0001BX00" and answer[41:] == TMK_KCV
    assert answer[8:41] != old_form
    assert decrypt_under_lmk(new, KeyType.TMK, answer[8:41]) == TMK
    # a key of another type fails the old LMK's variant for the named type
    assert hsm.handle(f"0001BW{KeyType.PVK.code}{old_form}".encode()) == b"0001BX10"


@pytest.mark.anyio
async def test_components_reach_the_hsm_but_never_its_audit_log(tmp_path: Path) -> None:
    audit_path = tmp_path / "audit.jsonl"
    audit = AuditLog(audit_path)
    processor = HsmProcessor(LMK, allow_clear_import=True)
    async with anyio.create_task_group() as tg:
        port = await tg.start(functools.partial(serve, "127.0.0.1", 0, processor=processor, audit=audit))
        async with await HsmClient.connect("127.0.0.1", port) as hsm:
            formed = await hsm.form_key_from_components(KeyType.TMK, [C1, C2])
            assert formed.kcv == TMK_KCV
            with pytest.raises(HsmError) as refused:
                await hsm.form_key_from_components(KeyType.TMK, [C1, "0" * 32])
            assert refused.value.error_code == "10"
            other = generate_key()
            with pytest.raises(HsmError):
                await hsm.form_key_from_components(KeyType.TAK, [other.hex(), C2])
        tg.cancel_scope.cancel()
    text = audit_path.read_text()
    entries = [json.loads(line) for line in text.splitlines()]
    assert [(e["command"], e["outcome"]) for e in entries] == [("A4", "00"), ("A4", "10"), ("A4", "15")]
    for secret in (C1, C2, TMK.hex().upper(), other.hex().upper(), other.hex()):
        assert secret not in text
