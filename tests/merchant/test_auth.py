"""The merchant link's request authentication: HMAC-SHA-256/64 against RFC 4231; the replay guard's table
(unsigned, stale, replayed); and over real TCP — a real HSM holding the keys the key ceremony formed, the
platform verifying through it — a good signature, a wrong key, an unknown key id, a replay and a clock
outside the window, each refused with its own code and logged without the MAC, the platform serving others."""

from __future__ import annotations

import functools
import json
import logging
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest

from acqkit.config import AcqsimConfig
from acqkit.netio import connect
from acqsim.provision import key_ceremony
from hsm_sim.client import HsmClient
from hsm_sim.processor import HsmProcessor
from hsm_sim.server import serve as serve_hsm
from merchant.auth import AUTH_WINDOW_S, Refusal, ReplayGuard, SignedRequest
from merchant.client import LinkSigner, MerchantClient, fresh_nonce, link_keys
from merchant.server import HsmLinkVerifier, MerchantHost
from merchant.server import serve as serve_merchant
from merchant.store import MerchantStore
from wire.merchantlink import MERCHANT_LINK, AuthResult, MerchantKind, derive_test_link_key, sign, signing_bytes
from wire.paycrypto import MacAlgorithm, compute_mac
from wire.tlvlink import LinkMessage, decode_message, encode_message

TERMINAL, MERCHANT = "10000001", "100000000000001"
NOW = 1_800_000_000.0
STEP_S = 10.0


def _listing() -> LinkMessage:
    return LinkMessage.of(MerchantKind.NOTICE_LIST, MI=MERCHANT, TI=TERMINAL)


def test_the_link_mac_is_hmac_sha256_truncated_to_8_bytes() -> None:
    # RFC 4231 test case 2: HMAC-SHA-256("Jefe", "what do ya want for nothing?") = 5bdcc146bf60754e6a04…
    mac = compute_mac(MacAlgorithm.HMAC_SHA256_64, b"Jefe", b"what do ya want for nothing?")
    assert mac == bytes.fromhex("5bdcc146bf60754e")


def test_a_signature_covers_every_tag_but_itself() -> None:
    key = derive_test_link_key(AcqsimConfig.default().terminals[0].tmk)
    signed = sign(_listing(), key_id=TERMINAL, key=key, now=NOW, nonce="00" * 8)
    assert [tag for tag, _ in signed.values][-4:] == ["KI", "TS", "NC", "HM"]
    payload = encode_message(signed, MERCHANT_LINK)
    assert payload.startswith(signing_bytes(signed))  # HM is last: the MAC is over the frame before it
    assert signed["HM"] == compute_mac(MacAlgorithm.HMAC_SHA256_64, key, signing_bytes(signed)).hex().upper()
    resigned = sign(signed, key_id=TERMINAL, key=key, now=NOW + 1, nonce="11" * 8)
    assert [tag for tag, _ in resigned.values].count("HM") == 1  # signing again replaces, never stacks


def test_the_replay_guard_table() -> None:
    guard = ReplayGuard()
    key = bytes(16)
    unsigned = guard.precheck(_listing(), NOW)
    assert isinstance(unsigned, Refusal) and unsigned.code == AuthResult.UNSIGNED
    stale = sign(_listing(), key_id=TERMINAL, key=key, now=NOW - AUTH_WINDOW_S - 1, nonce="AB" * 8)
    refused = guard.precheck(stale, NOW)
    assert isinstance(refused, Refusal) and refused.code == AuthResult.STALE
    ahead = sign(_listing(), key_id=TERMINAL, key=key, now=NOW + AUTH_WINDOW_S + 1, nonce="AB" * 8)
    assert isinstance(guard.precheck(ahead, NOW), Refusal)
    good = sign(_listing(), key_id=TERMINAL, key=key, now=NOW, nonce="CD" * 8)
    checked = guard.precheck(good, NOW)
    assert isinstance(checked, SignedRequest)
    assert guard.admit(checked, NOW) is None
    again = guard.precheck(good, NOW + 1)
    assert isinstance(again, Refusal) and again.code == AuthResult.REPLAYED
    assert guard.admit(checked, NOW + 1) == Refusal(AuthResult.REPLAYED, "nonce seen already")  # a racing twin
    # Nonces are forgotten only once a replay would be stale anyway: memory stays bounded.
    later = guard.precheck(
        sign(_listing(), key_id=TERMINAL, key=key, now=NOW + 3 * AUTH_WINDOW_S, nonce="EF" * 8), NOW + 3 * AUTH_WINDOW_S
    )
    assert isinstance(later, SignedRequest)
    assert guard.admit(later, NOW + 3 * AUTH_WINDOW_S) is None
    assert len(guard) == 1


@asynccontextmanager
async def _platform(tmp_path: Path) -> AsyncIterator[int]:
    """A real HSM with the ceremony's keys, and the platform verifying every request through it."""
    config = AcqsimConfig.default(data_dir=tmp_path)
    processor = HsmProcessor.with_random_lmk(allow_clear_import=True)
    store = MerchantStore(tmp_path / "merchant.sqlite3")
    try:
        async with anyio.create_task_group() as tg:
            hsm_port = await tg.start(functools.partial(serve_hsm, "127.0.0.1", 0, processor=processor))
            async with await HsmClient.connect("127.0.0.1", hsm_port) as hsm:
                keys = await key_ceremony(config, hsm)
                host = MerchantHost(store, verifier=HsmLinkVerifier(hsm, link_keys(keys)))
                yield await tg.start(functools.partial(serve_merchant, "127.0.0.1", 0, platform=host))
            tg.cancel_scope.cancel()
    finally:
        store.close()


@pytest.mark.anyio
async def test_signed_requests_over_tcp_good_bad_unknown_replayed_and_stale(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="acqsim.merchant")
    tmk = AcqsimConfig.default().terminals[0].tmk
    good_key = derive_test_link_key(tmk)
    with anyio.fail_after(STEP_S * 3):
        async with _platform(tmp_path) as port:
            async with MerchantClient("127.0.0.1", port, signer=LinkSigner(TERMINAL, good_key)) as terminal:
                assert (await terminal.request(_listing())).result == "00"
            async with MerchantClient("127.0.0.1", port) as unsigned:
                assert (await unsigned.request(_listing())).result == AuthResult.UNSIGNED
            wrong = LinkSigner(TERMINAL, derive_test_link_key(AcqsimConfig.default().terminals[1].tmk))
            async with MerchantClient("127.0.0.1", port, signer=wrong) as impostor:
                bad = await impostor.request(_listing())
                assert (bad.result, bad["TX"]) == (AuthResult.BAD_MAC, "HM does not verify")
            async with MerchantClient("127.0.0.1", port, signer=LinkSigner("99999999", good_key)) as stranger:
                assert (await stranger.request(_listing())).result == AuthResult.UNKNOWN_KEY
            skewed = LinkSigner(TERMINAL, good_key, clock=lambda: time.time() - AUTH_WINDOW_S - 60)
            async with MerchantClient("127.0.0.1", port, signer=skewed) as late:
                assert (await late.request(_listing())).result == AuthResult.STALE
            # A frame captured off the wire and sent again, byte for byte, on another connection.
            captured = encode_message(
                sign(_listing(), key_id=TERMINAL, key=good_key, now=time.time(), nonce=fresh_nonce()), MERCHANT_LINK
            )
            answers = []
            for _ in range(2):
                conn = await connect("127.0.0.1", port, timeout=STEP_S)
                await conn.send(captured)
                answers.append(decode_message(await conn.receive(STEP_S) or b"", MERCHANT_LINK).result)
                await conn.aclose()
            assert answers == ["00", AuthResult.REPLAYED]
            async with MerchantClient("127.0.0.1", port, signer=LinkSigner(TERMINAL, good_key)) as terminal:
                assert (await terminal.request(_listing())).result == "00"  # still serving the honest
    refusals = [r.getMessage() for r in caplog.records if r.name == "acqsim.merchant"]
    assert len(refusals) == 5
    assert all("refused S" in line for line in refusals)
    assert not any(good_key.hex().upper() in line or "HM=" in line for line in refusals)


@pytest.mark.anyio
async def test_chargeback_and_parameter_notices_from_the_cli_are_signed_and_kept_once(tmp_path: Path) -> None:
    with anyio.fail_after(60):
        async with _platform(tmp_path) as port:
            at = ["--platform", f"127.0.0.1:{port}", "--json"]
            runs = [
                ["chargeback", "000000000042", "12.00"],
                ["chargeback", "000000000042", "12.00"],  # the back office runs it again: still one notice
                ["parameters", "7"],
            ]
            for run in runs:
                done = await anyio.run_process([sys.executable, "-m", "acqsim", "merchant", *run, *at], check=False)
                assert done.returncode == 0, done.stderr.decode()
                assert json.loads(done.stdout)["RC"] == "00"
            signer = LinkSigner(TERMINAL, derive_test_link_key(AcqsimConfig.default().terminals[0].tmk))
            merchant_id = AcqsimConfig.default().terminals[0].merchant_id
            async with MerchantClient("127.0.0.1", port, signer=signer) as terminal:
                listed = await terminal.request(LinkMessage.of(MerchantKind.NOTICE_LIST, MI=merchant_id, TI=TERMINAL))
    assert listed["CN"] == "2"
    assert listed["N1"] == "2|PARAMETERS|parameter version 7 is ready to download"
    assert listed["N2"] == "1|CHARGEBACK|chargeback of 12.00 CNY on RRN 000000000042"
