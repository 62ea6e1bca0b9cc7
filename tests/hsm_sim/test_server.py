"""The HSM over real loopback TCP with its client, on both anyio backends."""

from __future__ import annotations

import functools

import anyio
import pytest

import hsm_sim.server
from acqkit.netio import connect
from hsm_sim.client import HsmClient, HsmError, HsmUnavailable, PinVerification
from hsm_sim.keys import DEFAULT_TEST_LMK, KeyType, encrypt_under_lmk
from hsm_sim.server import serve
from wire.paycrypto import (
    MacAlgorithm,
    build_pin_block,
    decrypt_key_under,
    key_check_value,
    mac_cup_ecb,
    mac_x919,
    tdes_ecb_encrypt,
)

pytestmark = pytest.mark.anyio

TMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
PVK = bytes.fromhex("7A3D5E1F2A4C6B8C9E0E1A2A3D4C5E6E")


async def test_sign_on_keys_mac_and_pin_over_tcp() -> None:
    async with anyio.create_task_group() as tg:
        port = await tg.start(functools.partial(serve, "127.0.0.1", 0, lmk=DEFAULT_TEST_LMK))
        async with await HsmClient.connect("127.0.0.1", port) as hsm:
            assert await hsm.diagnostics() == DEFAULT_TEST_LMK.check_value
            tmk_lmk = encrypt_under_lmk(DEFAULT_TEST_LMK, KeyType.TMK, TMK)
            mak = await hsm.generate_key(KeyType.TAK, under_tmk=tmk_lmk)
            pik = await hsm.generate_key(KeyType.TPK, under_tmk=tmk_lmk)
            assert mak.under_tmk is not None and pik.under_tmk is not None
            clear_mak = decrypt_key_under(TMK, bytes.fromhex(mak.under_tmk))
            clear_pik = decrypt_key_under(TMK, bytes.fromhex(pik.under_tmk))
            assert mak.kcv == key_check_value(clear_mak).hex().upper()
            assert await hsm.key_check_value(KeyType.TAK, mak.under_lmk) == mak.kcv

            data = b"0200 some message block"
            mac = await hsm.generate_mac(KeyType.TAK, mak.under_lmk, data, MacAlgorithm.CUP_ECB)
            assert mac == mac_cup_ecb(clear_mak, data)  # the terminal computes the same MAC
            assert await hsm.verify_mac(KeyType.TAK, mak.under_lmk, data, mac, MacAlgorithm.CUP_ECB)
            assert not await hsm.verify_mac(KeyType.TAK, mak.under_lmk, data + b"x", mac, MacAlgorithm.CUP_ECB)

            pan = "6200001000000003"
            pvk_lmk = encrypt_under_lmk(DEFAULT_TEST_LMK, KeyType.PVK, PVK)
            good = tdes_ecb_encrypt(clear_pik, build_pin_block("123456", pan))
            bad = tdes_ecb_encrypt(clear_pik, build_pin_block("654321", pan))
            check = functools.partial(hsm.verify_pin_pvv, pik.under_lmk, pvk_lmk, pan=pan, pvki="1", pvv="6308")
            assert await check(good) is PinVerification.OK
            assert await check(bad) is PinVerification.WRONG_PIN

            with pytest.raises(HsmError) as info:
                await hsm.key_check_value(KeyType.TPK, mak.under_lmk)  # wrong type
            assert info.value.error_code == "10"
        tg.cancel_scope.cancel()


async def test_mac_and_pin_checked_together_each_answer_goes_to_its_command() -> None:
    """M8 and DC pipelined in one write: every combination of MAC and PIN outcome comes back in place,
    with many such pairs in flight on the one connection at once."""
    mak, pik = bytes.fromhex("1C587F1C13924FEFFEDCBA9876543210"), bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    mak_lmk = encrypt_under_lmk(DEFAULT_TEST_LMK, KeyType.TAK, mak)
    pik_lmk = encrypt_under_lmk(DEFAULT_TEST_LMK, KeyType.TPK, pik)
    pvk_lmk = encrypt_under_lmk(DEFAULT_TEST_LMK, KeyType.PVK, PVK)
    pan = "6200001000000003"
    data = b"0200 a message block"
    # Each wrong PIN is tried on an account of its own: the HSM's per-account failure limit must not depend
    # on the order in which the scheduler (trio shuffles it) lets the pipelined callers write.
    wrong_pans = {i: f"62000010{i:07d}3" for i in range(24)}
    right_block = tdes_ecb_encrypt(pik, build_pin_block("123456", pan))
    wrong_blocks = {i: tdes_ecb_encrypt(pik, build_pin_block("654321", p)) for i, p in wrong_pans.items()}
    async with anyio.create_task_group() as tg:
        port = await tg.start(functools.partial(serve, "127.0.0.1", 0, lmk=DEFAULT_TEST_LMK))
        async with await HsmClient.connect("127.0.0.1", port) as hsm:
            outcomes: dict[int, tuple[bool, PinVerification]] = {}

            async def check(i: int) -> None:
                mac = mac_cup_ecb(mak, data) if i % 2 == 0 else b"\x00" * 8
                block, account = (right_block, pan) if i % 3 == 0 else (wrong_blocks[i], wrong_pans[i])
                outcomes[i] = await hsm.verify_mac_and_pin_pvv(
                    (KeyType.TAK, mak_lmk, data, mac, MacAlgorithm.CUP_ECB),
                    (pik_lmk, pvk_lmk, block, account, "1", "6308"),
                )

            async with anyio.create_task_group() as callers:
                for i in range(24):
                    callers.start_soon(check, i)
        tg.cancel_scope.cancel()
    for i, (mac_ok, pin) in outcomes.items():
        assert mac_ok == (i % 2 == 0)
        assert pin is (PinVerification.OK if i % 3 == 0 else PinVerification.WRONG_PIN)
    assert len(outcomes) == 24


async def test_concurrent_callers_and_a_malformed_client() -> None:
    mak = bytes.fromhex("1C587F1C13924FEFFEDCBA9876543210")
    mak_lmk = encrypt_under_lmk(DEFAULT_TEST_LMK, KeyType.TAK, mak)
    async with anyio.create_task_group() as tg:
        port = await tg.start(functools.partial(serve, "127.0.0.1", 0, lmk=DEFAULT_TEST_LMK))
        async with await HsmClient.connect("127.0.0.1", port) as hsm:
            assert await hsm.diagnostics() == DEFAULT_TEST_LMK.check_value  # connection open before the rogue
            # A client that sends an oversized length prefix is cut off; the other keeps being served.
            rogue = await anyio.connect_tcp("127.0.0.1", port)
            await rogue.send(b"\xff\xff" + b"x" * 10)
            with anyio.fail_after(5), pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                await rogue.receive()  # the server closed that connection
            results: list[bool] = []

            async def ask(i: int) -> None:
                data = f"message {i}".encode() * (i + 1)
                mac = await hsm.generate_mac(KeyType.TAK, mak_lmk, data, MacAlgorithm.X9_19)
                assert mac == mac_x919(mak, data)  # each caller got its own answer
                results.append(await hsm.verify_mac(KeyType.TAK, mak_lmk, data, mac, MacAlgorithm.X9_19))

            async with anyio.create_task_group() as callers:
                for i in range(16):
                    callers.start_soon(ask, i)
            assert results == [True] * 16
            await rogue.aclose()
        tg.cancel_scope.cancel()


async def test_unavailable_hsm_is_a_typed_error() -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()
    with pytest.raises(HsmUnavailable):
        await HsmClient.connect("127.0.0.1", port, timeout=1)


async def test_client_survives_an_hsm_restart_and_exports_a_zpk_under_a_zmk() -> None:
    zmk = bytes.fromhex("4CA2161637D0133E5E151AEA45DA2A16")
    async with anyio.create_task_group() as tg:
        stopped: dict[anyio.CancelScope, anyio.Event] = {}

        async def run_hsm(scope: anyio.CancelScope, port: int, *, task_status: anyio.abc.TaskStatus[int]) -> None:
            stopped[scope] = anyio.Event()
            try:
                with scope:
                    await serve("127.0.0.1", port, lmk=DEFAULT_TEST_LMK, task_status=task_status)
            finally:
                stopped[scope].set()  # its listener and connections are closed

        async def stop(scope: anyio.CancelScope) -> None:
            scope.cancel()
            with anyio.fail_after(5):
                await stopped[scope].wait()

        first = anyio.CancelScope()
        port = await tg.start(run_hsm, first, 0)
        async with await HsmClient.connect("127.0.0.1", port) as hsm:
            assert await hsm.diagnostics() == DEFAULT_TEST_LMK.check_value
            await stop(first)  # the HSM restarts: the client's pooled connection is now closed
            second = anyio.CancelScope()
            await tg.start(run_hsm, second, port)
            assert await hsm.diagnostics() == DEFAULT_TEST_LMK.check_value  # retried on a fresh connection
            await stop(second)  # down for good: a typed error, not a hang
            with pytest.raises(HsmUnavailable):
                await hsm.diagnostics()
            await tg.start(functools.partial(serve, "127.0.0.1", port, lmk=DEFAULT_TEST_LMK))
            assert await hsm.diagnostics() == DEFAULT_TEST_LMK.check_value  # re-opened on the next call
            zpk = await hsm.generate_key(KeyType.ZPK, under_tmk=encrypt_under_lmk(DEFAULT_TEST_LMK, KeyType.ZMK, zmk))
            assert zpk.under_tmk is not None
            clear = decrypt_key_under(zmk, bytes.fromhex(zpk.under_tmk))
            assert await hsm.key_check_value(KeyType.ZPK, zpk.under_lmk) == key_check_value(clear).hex().upper()
        tg.cancel_scope.cancel()


async def test_an_idle_connection_is_closed_and_a_busy_one_is_not(monkeypatch: pytest.MonkeyPatch) -> None:
    """One cancel scope at a time per connection serves as idle deadline (reading) and send deadline (writing),
    its deadline pushed back lazily: a client that keeps sending outlives the idle timeout, one that goes silent
    is closed after it (at the earliest when the send deadline of its last request has passed too)."""
    monkeypatch.setattr(hsm_sim.server, "IDLE_TIMEOUT_S", 0.3)
    monkeypatch.setattr(hsm_sim.server, "SEND_TIMEOUT_S", 0.4)
    monkeypatch.setattr(hsm_sim.server, "DEADLINE_SLACK_S", 0.1)
    async with anyio.create_task_group() as tg:
        port = await tg.start(functools.partial(serve, "127.0.0.1", 0, lmk=DEFAULT_TEST_LMK))
        conn = await connect("127.0.0.1", port, timeout=5)
        started = anyio.current_time()
        answers = 0
        while anyio.current_time() - started < 0.6:  # twice the idle timeout, never idle for long
            await conn.send(b"0001NC")
            assert (await conn.receive(5) or b"")[4:8] == b"ND00"
            answers += 1
        with anyio.fail_after(5):
            assert await conn.receive() is None  # silent now: closed by the HSM
        assert anyio.current_time() - started >= 0.6 + 0.25
        await conn.aclose()
        tg.cancel_scope.cancel()
    assert answers > 1


async def test_a_connection_silent_past_its_send_deadline_but_not_idle_is_served_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The connection's scope passes its early (send) deadline while the client is silent: the HSM reads on
    under a new scope, answers the next request, and closes the connection only once it is idle."""
    monkeypatch.setattr(hsm_sim.server, "IDLE_TIMEOUT_S", 1.0)
    monkeypatch.setattr(hsm_sim.server, "SEND_TIMEOUT_S", 0.1)
    monkeypatch.setattr(hsm_sim.server, "DEADLINE_SLACK_S", 0.05)
    async with anyio.create_task_group() as tg:
        port = await tg.start(functools.partial(serve, "127.0.0.1", 0, lmk=DEFAULT_TEST_LMK))
        conn = await connect("127.0.0.1", port, timeout=5)
        await conn.send(b"0001NC")
        assert (await conn.receive(5) or b"")[4:8] == b"ND00"
        await anyio.sleep(0.5)  # the scenario: silent past the send deadline (0.2 s), short of idle (1 s)
        await conn.send(b"0002NC")
        assert (await conn.receive(5) or b"")[4:8] == b"ND00"
        silent_since = anyio.current_time()
        with anyio.fail_after(5):
            assert await conn.receive() is None  # idle now: closed by the HSM
        assert anyio.current_time() - silent_since >= 0.9
        await conn.aclose()
        tg.cancel_scope.cancel()
