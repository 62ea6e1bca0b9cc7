"""Mutual TLS between services over real loopback TCP, with certificates from acqkit.tls (TEST material)."""

from __future__ import annotations

import functools
import ssl
import stat
from pathlib import Path

import anyio
import pytest
from cryptography import x509

from acqkit.netio import FramedConnection, connect, serve_tcp
from acqkit.tls import TlsRefused, client_context, create_all, server_context
from acqsim.cli import main as acqsim_main

pytestmark = pytest.mark.anyio

HOST = "127.0.0.1"
STEP_TIMEOUT_S = 5.0


@pytest.fixture(scope="module")
def ca_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("tls")
    create_all(directory)
    return directory


@pytest.fixture(scope="module")
def other_ca_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("other-tls")
    create_all(directory)
    return directory


class IdentityServer:
    """Answers every frame with the verified identity of its client."""

    def __init__(self) -> None:
        self.served = 0

    async def handle(self, conn: FramedConnection) -> None:
        self.served += 1
        while (payload := await conn.receive(STEP_TIMEOUT_S)) is not None:
            await conn.send(payload + b" from " + str(conn.peer_identity).encode())


async def refused_by_server(client: FramedConnection) -> bool:
    """A client the server refused sees its connection end (TLS 1.3 reports a client certificate's fate after
    the client's side of the handshake, at the first read)."""
    try:
        await client.send(b"hello")
        with anyio.fail_after(STEP_TIMEOUT_S):
            return await client.receive() is None
    except (anyio.BrokenResourceError, ssl.SSLError, OSError):
        return True
    finally:
        await client.aclose()


def test_material_names_the_service_and_keeps_keys_private(ca_dir: Path) -> None:
    cert = x509.load_pem_x509_certificate((ca_dir / "hsm.pem").read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["hsm"]
    assert {str(a) for a in san.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}
    assert "TEST" in cert.subject.rfc4514_string()
    for key in ca_dir.glob("*.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600


async def test_mutual_tls_sets_the_verified_client_name_as_peer_identity(ca_dir: Path) -> None:
    server = IdentityServer()
    async with anyio.create_task_group() as tg:
        port = await tg.start(
            functools.partial(serve_tcp, HOST, 0, server.handle, name="hsm", tls=server_context(ca_dir, "hsm"))
        )
        conn = await connect(
            HOST, port, timeout=STEP_TIMEOUT_S, tls=client_context(ca_dir, "frontend"), server_name="hsm"
        )
        await conn.send(b"hello")
        assert await conn.receive(STEP_TIMEOUT_S) == b"hello from frontend"
        await conn.aclose()
        tg.cancel_scope.cancel()


async def test_a_client_without_a_certificate_or_with_one_of_another_ca_is_refused(
    ca_dir: Path, other_ca_dir: Path
) -> None:
    server = IdentityServer()
    async with anyio.create_task_group() as tg:
        port = await tg.start(
            functools.partial(serve_tcp, HOST, 0, server.handle, name="hsm", tls=server_context(ca_dir, "hsm"))
        )
        no_cert = ssl.create_default_context(cafile=ca_dir / "ca.pem")  # trusts the server, shows nothing
        client = await connect(HOST, port, timeout=STEP_TIMEOUT_S, tls=no_cert, server_name="hsm")
        assert await refused_by_server(client)
        foreign = ssl.create_default_context(cafile=ca_dir / "ca.pem")
        foreign.load_cert_chain(other_ca_dir / "frontend.pem", other_ca_dir / "frontend.key")
        client = await connect(HOST, port, timeout=STEP_TIMEOUT_S, tls=foreign, server_name="hsm")
        assert await refused_by_server(client)
        plain = await connect(HOST, port, timeout=STEP_TIMEOUT_S)
        assert await refused_by_server(plain)
        assert server.served == 0  # no handler ever ran for them
        good = await connect(HOST, port, timeout=STEP_TIMEOUT_S, tls=client_context(ca_dir, "nac"), server_name="hsm")
        await good.send(b"hi")
        assert await good.receive(STEP_TIMEOUT_S) == b"hi from nac"
        await good.aclose()
        tg.cancel_scope.cancel()


async def test_a_server_whose_name_does_not_match_or_of_another_ca_is_refused(ca_dir: Path, other_ca_dir: Path) -> None:
    server = IdentityServer()
    async with anyio.create_task_group() as tg:
        port = await tg.start(
            functools.partial(serve_tcp, HOST, 0, server.handle, name="ledger", tls=server_context(ca_dir, "ledger"))
        )
        with pytest.raises(TlsRefused, match="hsm"):  # the ledger's certificate does not say hsm
            await connect(HOST, port, timeout=STEP_TIMEOUT_S, tls=client_context(ca_dir, "frontend"), server_name="hsm")
        with pytest.raises(TlsRefused):  # a server this client's CA did not certify
            await connect(
                HOST, port, timeout=STEP_TIMEOUT_S, tls=client_context(other_ca_dir, "frontend"), server_name="ledger"
            )
        tg.cancel_scope.cancel()


async def test_a_silent_client_is_dropped_after_the_handshake_deadline(
    ca_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("acqkit.tls.TLS_HANDSHAKE_TIMEOUT_S", 0.2)
    server = IdentityServer()
    async with anyio.create_task_group() as tg:
        port = await tg.start(
            functools.partial(serve_tcp, HOST, 0, server.handle, name="hsm", tls=server_context(ca_dir, "hsm"))
        )
        silent = await anyio.connect_tcp(HOST, port)  # never says hello
        with anyio.fail_after(STEP_TIMEOUT_S):
            with pytest.raises(anyio.EndOfStream):
                await silent.receive()
        await silent.aclose()
        tg.cancel_scope.cancel()


def test_certs_create_refuses_to_replace_without_force_and_show_lists_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "tls"
    assert acqsim_main(["certs", "create", "--dir", str(directory)]) == 0
    first = (directory / "ca.pem").read_bytes()
    assert acqsim_main(["certs", "create", "--dir", str(directory)]) == 2
    assert (directory / "ca.pem").read_bytes() == first
    assert acqsim_main(["certs", "create", "--dir", str(directory), "--force"]) == 0
    assert (directory / "ca.pem").read_bytes() != first
    capsys.readouterr()
    assert acqsim_main(["certs", "show", "--dir", str(directory)]) == 0
    out = capsys.readouterr().out
    assert "hsm.pem: subject CN=hsm" in out and "SAN=hsm,127.0.0.1,::1" in out
    assert "PRIVATE KEY" not in out
