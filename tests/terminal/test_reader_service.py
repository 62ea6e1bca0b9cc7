"""The MPOS card reader as its own service (``acqsim reader``) over real TCP on loopback: the link's requests
and answers (wire/readerlink.py), key loading, a malformed frame answered while the reader keeps serving, and
the phone's MPOS purchase through the reader service and the whole pipeline."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest

from acqkit.config import AcqsimConfig
from acqkit.netio import FramedConnection, connect
from acqsim.pipeline import running_pipeline
from terminal.pos import PosTerminal
from terminal.reader import DukptScheme
from terminal.readerd.cli import reader_test_keys as keys_for
from terminal.readerd.client import ReaderUnreachable, load_keys, read_card, reader_status
from terminal.readerd.core import ReaderDevice, wrong_pin
from terminal.readerd.server import serve_reader
from tests.cli_helpers import RUN_TIMEOUT_S, closed_port, run_acqsim
from wire.dukpt import KeyUsage, tdes_derive
from wire.paycrypto import extract_pin, tdes_cbc_decrypt, tdes_ecb_decrypt
from wire.readerlink import LinkError, ReaderLinkError

pytestmark = pytest.mark.anyio

GOOD = "6200001000000003"


@asynccontextmanager
async def reader_service(config: AcqsimConfig) -> AsyncIterator[int]:
    device = ReaderDevice({card.pan: card for card in config.cards})
    async with anyio.create_task_group() as tg:
        port = await tg.start(functools.partial(serve_reader, device, "127.0.0.1", 0))
        yield port
        tg.cancel_scope.cancel()


async def ask(conn: FramedConnection, payload: bytes) -> dict[str, object]:
    await conn.send(payload)
    answer = await conn.receive(5.0)
    assert answer is not None
    parsed: dict[str, object] = json.loads(answer)
    return parsed


async def test_the_reader_answers_bad_requests_clearly_and_keeps_serving(tmp_path: Path) -> None:
    config = AcqsimConfig.default(data_dir=tmp_path)
    async with reader_service(config) as port:
        conn = await connect("127.0.0.1", port, timeout=5.0)
        try:
            assert await ask(conn, b'{"op": "status"}') == {
                "ok": True, "loaded": False, "scheme": None, "key_id": None, "counter": 0,
            }  # fmt: skip
            for bad, why in (
                (b"\xff\x00 not json", "not a JSON object"),
                (b"[1, 2]", "not a JSON object"),
                (b'{"op": "fly"}', "member 'op' must be read | status | load"),
                (b'{"op": "read", "card": "62000010", "pin": "keyed"}', "member 'card' must be a PAN"),
                (b'{"op": "load", "scheme": "aes", "initial_key": "00", "initial_ksn": "00"}', "'initial_key'"),
            ):
                answer = await ask(conn, bad)
                assert answer["ok"] is False and answer["error"] == "malformed" and why in str(answer["reason"])
            answer = await ask(conn, b'{"op": "read", "card": "%s", "pin": "keyed"}' % GOOD.encode())
            assert answer == {
                "ok": False,
                "error": "not_loaded",
                "reason": "no keys injected: run acqsim reader inject",
            }
            assert (await ask(conn, b'{"op": "status"}'))["ok"] is True  # the same link still served
        finally:
            await conn.aclose()


async def test_injected_keys_give_ciphertexts_only_the_bdk_opens(tmp_path: Path) -> None:
    config = AcqsimConfig.default(data_dir=tmp_path)
    card = config.card(GOOD)
    async with reader_service(config) as port:
        loaded = await load_keys("127.0.0.1", port, keys_for(config, "10000002", DukptScheme.TDES))
        status = await reader_status("127.0.0.1", port)
        assert status["loaded"] is True and status["key_id"] == loaded["key_id"] and status["counter"] == 0
        reading = await read_card("127.0.0.1", port, GOOD, "keyed")
        assert reading.scheme == "tdes" and reading.ksn.hex().upper().startswith(config.bdk_ksi)
        bdk = bytes.fromhex(config.bdk)
        clear = tdes_cbc_decrypt(tdes_derive(bdk, reading.ksn, KeyUsage.DATA), reading.track)
        assert clear.rstrip(b"\0").decode() == card.track2
        assert reading.pin_block is not None
        block = tdes_ecb_decrypt(tdes_derive(bdk, reading.ksn, KeyUsage.PIN), reading.pin_block)
        assert extract_pin(block, card.pan) == card.pin
        again = await read_card("127.0.0.1", port, GOOD, "none")
        assert again.ksn != reading.ksn and again.pin_block is None  # a new counter for every read
        with pytest.raises(ReaderLinkError) as refused:
            await read_card("127.0.0.1", port, "6299999999999999", "keyed")
        assert refused.value.code is LinkError.UNKNOWN_CARD
    with pytest.raises(ReaderUnreachable):
        await reader_status("127.0.0.1", port, timeout=2.0)  # the service is gone


async def test_the_phone_buys_through_the_reader_service_and_the_pipeline(tmp_path: Path) -> None:
    config = AcqsimConfig.default(data_dir=tmp_path)
    good = config.card(GOOD)
    async with running_pipeline(config) as pipeline, reader_service(config) as port:
        await load_keys("127.0.0.1", port, keys_for(config, "10000002", DukptScheme.AES))
        async with PosTerminal(config, "10000002", nac=pipeline.nac) as phone:
            reader = ("127.0.0.1", port)
            bought = await phone.mpos_financial_via_reader("purchase", reader, good, amount=500, pin="keyed")
            assert bought is not None and bought.approved
            wrong = await phone.mpos_financial_via_reader("purchase", reader, good, amount=500, pin="wrong")
            assert wrong is not None and wrong.response_code == "55"


def test_a_wrong_pin_is_one_digit_off() -> None:
    assert wrong_pin("123456") == "223456" and wrong_pin("9123") == "0123"


def test_the_commands_serve_inject_and_status_as_processes(tmp_path: Path) -> None:
    """``acqsim reader serve`` announces READY; ``inject`` and ``status`` report as JSON; no reader → exit 3."""
    argv = [sys.executable, "-m", "acqsim", "reader", "serve", "--port", "0"]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=tmp_path) as served:
        assert served.stdout is not None
        ready = served.stdout.readline()  # the first line, or "" if the reader died first
        try:
            assert ready.startswith("READY reader 127.0.0.1:")
            address = ready.split()[-1]
            injected = run_acqsim("reader", "inject", "--reader", address, "--scheme", "aes", "--json", cwd=tmp_path)
            key_id = json.loads(injected.stdout)["key_id"]
            assert injected.returncode == 0 and len(key_id) == 16 and key_id.startswith("FFFF987654")  # 8 bytes
            status = run_acqsim("reader", "status", "--reader", address, "--json", cwd=tmp_path)
            assert json.loads(status.stdout) == {"loaded": True, "scheme": "aes", "key_id": key_id, "counter": 0}
        finally:
            served.terminate()
            served.wait(timeout=RUN_TIMEOUT_S)
    gone = run_acqsim("reader", "status", "--reader", f"127.0.0.1:{closed_port()}", cwd=tmp_path)
    assert gone.returncode == 3 and gone.stderr.count("\n") == 1 and "no reader at" in gone.stderr
