"""The HSM's behaviours on both of its shells, over real loopback TCP: the callback path (asyncio, plain TCP) and
the task path (trio; and asyncio under mutual TLS). Rules (answer, drop, delay, answer twice, close), the idle
timeout, a client that does not read its answers (the send timeout), and a framing error on one connection while
another is served."""

from __future__ import annotations

import dataclasses
import functools
import logging
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest

import hsm_sim.server
from acqkit import netio
from acqkit.rules import RuleBook
from acqkit.serving import PLAIN, Serving
from acqkit.tls import client_context, server_context
from hsm_sim.client import decrypt_data_command
from hsm_sim.keys import DEFAULT_TEST_LMK, KeyType, encrypt_under_lmk
from hsm_sim.server import serve
from tests.shellmodes import MODES, ON_EVERY_SHELL
from tests.streamframes import frames_until_end
from wire.framing import frame

pytestmark = [pytest.mark.anyio, ON_EVERY_SHELL]

HOST = "127.0.0.1"
DEADLINE_S = 10.0
RULES = """
[[rule]]
at = "hsm"
command = "NC"
action = "answer_twice"

[[rule]]
at = "hsm"
command = "A0"
action = "answer"
code = "01"

[[rule]]
at = "hsm"
command = "BU"
action = "drop"

[[rule]]
at = "hsm"
command = "M8"
action = "delay"
delay_s = 0.2

[[rule]]
at = "hsm"
command = "DC"
action = "close"
"""


@dataclasses.dataclass(frozen=True)
class RunningHsm:
    port: int
    client_tls: ssl.SSLContext | None  # the front-end's, under TLS

    async def open(self) -> netio.FramedConnection:
        return await netio.connect(HOST, self.port, timeout=DEADLINE_S, tls=self.client_tls)

    async def open_stream(self) -> anyio.abc.ByteStream:
        """A connection that reads nothing until asked (anyio's own: ``netio.connect`` reads ahead)."""
        if self.client_tls is None:
            return await anyio.connect_tcp(HOST, self.port)
        return await anyio.connect_tcp(HOST, self.port, ssl_context=self.client_tls, tls_hostname=HOST)


@asynccontextmanager
async def running_hsm(mode: str, tls_ca_dir: Path, rules: RuleBook | None = None) -> AsyncIterator[RunningHsm]:
    """An HSM in ``mode``; yields how to open a framed connection to it (as the front-end, under TLS)."""
    tls = MODES[mode][1]
    serving = Serving(server_tls=server_context(tls_ca_dir, "hsm")) if tls else PLAIN
    client_tls = client_context(tls_ca_dir, "frontend") if tls else None
    async with anyio.create_task_group() as tg:
        port = await tg.start(functools.partial(serve, HOST, 0, lmk=DEFAULT_TEST_LMK, serving=serving, rules=rules))
        yield RunningHsm(port, client_tls)
        tg.cancel_scope.cancel()


def command(header: str, code: str, fields: bytes = b"") -> bytes:
    return f"{header}{code}".encode("ascii") + fields


async def receive(conn: netio.FramedConnection) -> bytes | None:
    return await conn.receive(DEADLINE_S)


async def test_the_shell_in_use(mode: str, tls_ca_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "acqsim.net")
    async with running_hsm(mode, tls_ca_dir) as hsm:
        conn = await hsm.open()
        await conn.send(command("0001", "NC"))
        assert ((await receive(conn)) or b"")[:8] == b"0001ND00"
        await conn.aclose()
    listening = [r.getMessage() for r in caplog.records if "hsm listening on" in r.getMessage()]
    assert len(listening) == 1 and ("callbacks" in listening[0]) is (mode == "callbacks")


async def test_rules_answer_drop_delay_answer_twice_and_close(mode: str, tls_ca_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "rules.toml").write_text(RULES)
    async with running_hsm(mode, tls_ca_dir, RuleBook(tmp_path / "rules.toml", "hsm")) as hsm:
        conn = await hsm.open()
        await conn.send_many(
            [
                command("0001", "NC"),  # answered twice
                command("0002", "A0"),  # scripted: A1 with error 01, not processed
                command("0003", "BU"),  # dropped
                command("0004", "M8"),  # answered 0.2 s later (processed then: its fields are missing)
                command("0005", "XX"),  # no rule: processed (an unknown command's error answer)
            ]
        )
        heads = [((await receive(conn)) or b"")[:8] for _ in range(5)]
        assert heads[:3] == [b"0001ND00", b"0001ND00", b"0002A101"]
        assert heads[3][:6] == b"0005XY"
        assert heads[4][:6] == b"0004M9"  # the delayed one, last
        await conn.send_many(
            [command("0006", "NC"), command("0007", "M8"), command("0008", "DC"), command("0009", "NC")]
        )
        assert ((await receive(conn)) or b"")[:8] == b"0006ND00"
        assert ((await receive(conn)) or b"")[:8] == b"0006ND00"
        assert await receive(conn) is None  # closed by the rule: DC, the NC after it, the delayed M8 unanswered
        await conn.aclose()
        other = await hsm.open()  # the HSM serves on
        await other.send(command("0010", "A0"))
        assert ((await receive(other)) or b"")[:8] == b"0010A101"
        await other.aclose()


async def test_a_client_that_ends_its_side_gets_its_delayed_answers_before_the_end(
    mode: str, tls_ca_dir: Path, tmp_path: Path
) -> None:
    """A client may send its commands and then end its side of the connection (a half-close): the answers a DELAY
    rule holds still come, each once, and only then does the HSM close."""
    if MODES[mode][1]:
        pytest.skip("a TLS stream has no half-close (anyio's TLSStream.send_eof)")
    (tmp_path / "rules.toml").write_text(RULES)
    async with running_hsm(mode, tls_ca_dir, RuleBook(tmp_path / "rules.toml", "hsm")) as hsm:
        stream = await hsm.open_stream()
        sent = [command("0001", "M8"), command("0002", "XX"), command("0003", "M8")]  # two delayed 0.2 s
        await stream.send(b"".join(frame(one) for one in sent))
        await stream.send_eof()
        heads = [answer[:6] for answer in await frames_until_end(stream, DEADLINE_S)]
        assert heads[0] == b"0002XY"  # at once
        assert sorted(heads[1:]) == [b"0001M9", b"0003M9"]  # then the delayed ones, each once, then the end
        await stream.aclose()


async def test_an_idle_connection_is_closed(mode: str, tls_ca_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hsm_sim.server, "IDLE_TIMEOUT_S", 0.3)
    monkeypatch.setattr(hsm_sim.server, "SEND_TIMEOUT_S", 0.2)
    monkeypatch.setattr(hsm_sim.server, "DEADLINE_SLACK_S", 0.05)
    async with running_hsm(mode, tls_ca_dir) as hsm:
        conn = await hsm.open()
        await conn.send(command("0001", "NC"))
        assert ((await receive(conn)) or b"")[:8] == b"0001ND00"
        silent_since = anyio.current_time()
        assert await receive(conn) is None  # closed by the HSM
        assert anyio.current_time() - silent_since >= 0.3 - 0.05  # not before the idle timeout (timer slack)
        await conn.aclose()


async def test_a_client_that_does_not_read_is_cut_off_at_the_send_timeout(
    mode: str, tls_ca_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Large answers (M2, data decrypted) to a client that only writes: once they fill the buffers, the HSM stops
    reading that connection and drops it when the send timeout passes; another client is served all along."""
    caplog.set_level(logging.INFO, "acqsim.net")
    monkeypatch.setattr(hsm_sim.server, "SEND_TIMEOUT_S", 0.3)
    monkeypatch.setattr(hsm_sim.server, "DEADLINE_SLACK_S", 0.05)
    tdk = encrypt_under_lmk(DEFAULT_TEST_LMK, KeyType.TDK, bytes.fromhex("0123456789ABCDEFFEDCBA9876543210"))
    request = frame(decrypt_data_command("D", tdk, bytes(1600), cbc=False).payload("0001"))
    async with running_hsm(mode, tls_ca_dir) as hsm:
        reader = await hsm.open()
        stuck = await hsm.open_stream()
        sent = 0
        with anyio.fail_after(DEADLINE_S), pytest.raises((anyio.BrokenResourceError, anyio.ClosedResourceError)):
            while True:  # never reads: the HSM ends this connection, and a write meets that
                await stuck.send(request)
                sent += 1
        assert sent > 10
        await reader.send(command("0002", "NC"))
        assert ((await receive(reader)) or b"")[:8] == b"0002ND00"
        await stuck.aclose()
        await reader.aclose()
    if mode == "callbacks":  # the runtime says which connection it dropped, and why
        assert any("did not take what was sent within 0.3 s" in r.getMessage() for r in caplog.records)


async def test_a_framing_error_closes_that_connection_only(mode: str, tls_ca_dir: Path) -> None:
    async with running_hsm(mode, tls_ca_dir) as hsm:
        good = await hsm.open()
        bad = await hsm.open()
        await bad.stream.send(b"\xff\xff" + b"x" * 10)  # a length over MAX_FRAME_LEN: out of step
        try:
            closed = await receive(bad) is None
        except anyio.BrokenResourceError:  # reset: the HSM closed it with our bytes unread
            closed = True
        assert closed
        await good.send(command("0001", "NC"))
        assert ((await receive(good)) or b"")[:8] == b"0001ND00"
        await bad.aclose()
        await good.aclose()


async def test_the_requests_before_a_framing_error_are_answered_before_the_connection_closes(
    mode: str, tls_ca_dir: Path
) -> None:
    async with running_hsm(mode, tls_ca_dir) as hsm:
        conn = await hsm.open()
        # two good frames and a zero-length one, in one write: they arrive together in one read (or in several)
        await conn.stream.send(frame(command("0001", "NC")) + frame(command("0002", "NC")) + b"\x00\x00")
        assert ((await receive(conn)) or b"")[:8] == b"0001ND00"
        assert ((await receive(conn)) or b"")[:8] == b"0002ND00"
        try:
            closed = await receive(conn) is None
        except anyio.BrokenResourceError:
            closed = True
        assert closed
        await conn.aclose()
