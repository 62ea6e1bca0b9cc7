"""PIN verification is no oracle: per-account failure limit and per-client rate, on a controlled clock."""

from __future__ import annotations

from hsm_sim.keys import DEFAULT_TEST_LMK, KeyType, encrypt_under_lmk
from hsm_sim.pin_guard import MAX_PIN_FAILURES_PER_ACCOUNT, PIN_FAILURE_WINDOW_S, PinGuard
from hsm_sim.processor import HsmProcessor
from wire.paycrypto import build_pin_block, tdes_ecb_encrypt, visa_pvv

LMK = DEFAULT_TEST_LMK
PIK = bytes.fromhex("0123456789ABCDEF1C587F1C13924FEF")  # TEST key
PVK = bytes.fromhex("7A3D5E1F2A4C6B8C9E0E1A2A3D4C5E6E")  # TEST key


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def dc(pan: str, pin: str) -> bytes:
    pvv = visa_pvv(PVK, pan, "1", "123456")
    block = tdes_ecb_encrypt(PIK, build_pin_block(pin, pan)).hex().upper()
    fields = encrypt_under_lmk(LMK, KeyType.TPK, PIK) + encrypt_under_lmk(LMK, KeyType.PVK, PVK)
    return ("0007DC" + fields + block + "01" + pan[-13:-1] + "1" + pvv).encode("ascii")


def code(answer: bytes) -> str:
    return answer[6:8].decode("ascii")


def test_account_locked_after_failures_in_window_even_for_the_right_pin_then_released() -> None:
    clock = Clock()
    hsm = HsmProcessor(LMK, clock=clock)
    pan, other = "6200001000000003", "6200002000000001"
    for _ in range(MAX_PIN_FAILURES_PER_ACCOUNT):
        assert code(hsm.handle(dc(pan, "999999"), "frontend")) == "01"
    assert code(hsm.handle(dc(pan, "123456"), "frontend")) == "29"  # locked: the right PIN is not tried
    assert code(hsm.handle(dc(other, "123456"), "frontend")) == "00"  # other accounts are not
    clock.now += PIN_FAILURE_WINDOW_S
    assert code(hsm.handle(dc(pan, "123456"), "frontend")) == "00"


def test_a_correct_pin_clears_the_accounts_failures() -> None:
    hsm = HsmProcessor(LMK, clock=Clock())
    pan = "6200001000000003"
    for _ in range(MAX_PIN_FAILURES_PER_ACCOUNT - 1):
        assert code(hsm.handle(dc(pan, "999999"))) == "01"
    assert code(hsm.handle(dc(pan, "123456"))) == "00"
    for _ in range(MAX_PIN_FAILURES_PER_ACCOUNT - 1):
        assert code(hsm.handle(dc(pan, "999999"))) == "01"
    assert code(hsm.handle(dc(pan, "123456"))) == "00"


def test_per_client_rate_answers_17_and_other_clients_go_on() -> None:
    clock = Clock()
    hsm = HsmProcessor(LMK, pin_guard=PinGuard(rate_per_s=5), clock=clock)
    answers = [code(hsm.handle(dc("6200001000000003", "123456"), "greedy")) for _ in range(6)]
    assert answers == ["00"] * 5 + ["17"]
    assert code(hsm.handle(dc("6200001000000003", "123456"), "frontend")) == "00"
    clock.now += 1.0
    assert code(hsm.handle(dc("6200001000000003", "123456"), "greedy")) == "00"


def test_garbage_pin_blocks_count_as_failures() -> None:
    hsm = HsmProcessor(LMK, clock=Clock())
    pan = "6200001000000003"
    fields = dc(pan, "123456")
    garbage = tdes_ecb_encrypt(PIK, bytes.fromhex("FFFFFFFFFFFFFFFF")).hex().upper().encode("ascii")
    bad = fields[: 6 + 66] + garbage + fields[6 + 66 + 16 :]
    for _ in range(MAX_PIN_FAILURES_PER_ACCOUNT):
        assert code(hsm.handle(bad)) == "01"
    assert code(hsm.handle(fields)) == "29"
