"""TLS on acqsim's TCP hops: a local CA, a certificate per service, and the SSL contexts built from them.

Mutual TLS: every server requires a client certificate issued by the same CA and every client verifies the
server's certificate against the CA and the service name it dialled (the SAN holds the service name and the
loopback addresses). The verified client certificate's common name becomes ``FramedConnection.peer_identity``
(the HSM's allow-list keys on it). Keys are EC P-256, generated here with ``cryptography``; they are test
material for a simulator, written to ``data_dir/tls/`` with mode 0600 — never production keys.

Layout of ``data_dir/tls/``: ``ca.pem`` (the CA certificate), ``ca.key``, and ``<service>.pem`` /
``<service>.key`` for each name in :data:`SERVICE_NAMES`.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import ipaddress
import os
import ssl
from pathlib import Path
from typing import Final

import anyio
import anyio.abc
import anyio.streams.tls
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: Every hop's handshake completes within this or the connection is dropped (a silent peer holds no slot).
TLS_HANDSHAKE_TIMEOUT_S: Final = 5.0
#: The local CA's lifetime, and each service certificate's.
CA_VALIDITY_DAYS: Final = 3650
CERT_VALIDITY_DAYS: Final = 825
#: The services that get a certificate (each both serves and dials, so each cert is for server and client).
#: ``scheme`` is the switch; ``issuer`` is every issuer host (one TEST identity shared by all of them).
SERVICE_NAMES: Final = ("hsm", "ledger", "frontend", "nac", "terminal", "wallet", "merchant", "scheme", "issuer")
TLS_DIR_NAME: Final = "tls"
CA_NAME: Final = "ca"
#: Written into every subject, so nobody mistakes these for real keys.
ORGANISATION: Final = "acqsim TEST ONLY"
LOOPBACK_ADDRESSES: Final = (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))
PRIVATE_KEY_MODE: Final = 0o600


class TlsRefused(ConnectionError):
    """A TLS handshake failed (no certificate, one from another CA, wrong name, timeout); ``reason`` says why.
    A ``ConnectionError``, so every caller that handles a refused connection handles this one too."""

    def __init__(self, reason: str, *, before_hello: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        #: The peer closed without a single handshake byte: a port probe (the supervisor's), not an attack.
        self.before_hello = before_hello


class TlsMaterialMissing(FileNotFoundError):
    """The certificates are not there: run ``acqsim certs create``."""


@dataclasses.dataclass(frozen=True, slots=True)
class TlsFiles:
    """Where one service's certificate, key and the CA certificate live."""

    directory: Path
    service: str

    @property
    def ca_cert(self) -> Path:
        return self.directory / f"{CA_NAME}.pem"

    @property
    def cert(self) -> Path:
        return self.directory / f"{self.service}.pem"

    @property
    def key(self) -> Path:
        return self.directory / f"{self.service}.key"


# -- creating the material ---------------------------------------------------------------------------------


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANISATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_KEY_MODE)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(path, PRIVATE_KEY_MODE)  # O_CREAT's mode does not apply to a file that was already there


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def create_ca(
    directory: Path, *, common_name: str = "acqsim test CA"
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A new self-signed CA in ``directory`` (``ca.pem``, ``ca.key``)."""
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_VALIDITY_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_key(directory / f"{CA_NAME}.key", key)
    _write_cert(directory / f"{CA_NAME}.pem", cert)
    return cert, key


def issue(
    directory: Path,
    service: str,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    *,
    dns_names: tuple[str, ...] = (),
) -> TlsFiles:
    """A certificate for ``service`` signed by the CA: SAN DNS = the service name (and ``dns_names``), IP =
    the loopback addresses; usable to serve and to dial (mutual TLS)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in (service, *dns_names)]
    names += [x509.IPAddress(address) for address in LOOPBACK_ADDRESSES]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(service))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CERT_VALIDITY_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(directory, service)
    _write_key(files.key, key)
    _write_cert(files.cert, cert)
    return files


def create_all(directory: Path, *, force: bool = False) -> list[Path]:
    """A CA and a certificate for every service in ``directory``; refuses to replace existing material
    unless ``force`` (new material means every running service must restart). Returns the files written."""
    ca_file = directory / f"{CA_NAME}.pem"
    if ca_file.exists() and not force:
        raise FileExistsError(f"{ca_file} exists (use --force to replace every certificate)")
    ca_cert, ca_key = create_ca(directory)
    written = [ca_file, directory / f"{CA_NAME}.key"]
    for service in SERVICE_NAMES:
        files = issue(directory, service, ca_cert, ca_key)
        written += [files.cert, files.key]
    return written


def certificate_facts(directory: Path) -> list[dict[str, str]]:
    """Per certificate in ``directory``: file, subject CN, issuer CN, SAN, expiry date (no key material)."""
    facts = []
    for path in sorted(directory.glob("*.pem")):
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            alt = ",".join([*san.get_values_for_type(x509.DNSName), *map(str, san.get_values_for_type(x509.IPAddress))])
        except x509.ExtensionNotFound:
            alt = "-"
        facts.append(
            {
                "file": path.name,
                "subject": _cn(cert.subject),
                "issuer": _cn(cert.issuer),
                "san": alt,
                "expires": f"{cert.not_valid_after_utc:%Y-%m-%d}",
            }
        )
    return facts


def describe(directory: Path) -> list[str]:
    """One line per certificate in ``directory`` (see :func:`certificate_facts`)."""
    return [
        f"{f['file']}: subject CN={f['subject']} issuer CN={f['issuer']} SAN={f['san']} expires {f['expires']}"
        for f in certificate_facts(directory)
    ]


def _cn(name: x509.Name) -> str:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else "?"


# -- contexts ----------------------------------------------------------------------------------------------


def _load(context: ssl.SSLContext, files: TlsFiles) -> ssl.SSLContext:
    for path in (files.ca_cert, files.cert, files.key):
        if not path.exists():
            raise TlsMaterialMissing(f"{path} is missing: run `acqsim certs create`")
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_verify_locations(cafile=files.ca_cert)
    context.load_cert_chain(certfile=files.cert, keyfile=files.key)
    return context


def server_context(directory: Path, service: str) -> ssl.SSLContext:
    """What ``serve_tcp(tls=...)`` takes: presents ``service``'s certificate, requires a client certificate
    issued by the CA."""
    context = _load(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), TlsFiles(directory, service))
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def client_context(directory: Path, service: str) -> ssl.SSLContext:
    """What ``connect(tls=...)`` takes: presents ``service``'s certificate, verifies the server by CA and name."""
    context = _load(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), TlsFiles(directory, service))
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def tls_dir(data_dir: Path) -> Path:
    return data_dir / TLS_DIR_NAME


# -- handshakes --------------------------------------------------------------------------------------------


async def tls_accept(stream: anyio.abc.ByteStream, context: ssl.SSLContext) -> tuple[anyio.abc.ByteStream, str | None]:
    """The server side of a handshake under ``TLS_HANDSHAKE_TIMEOUT_S``: the TLS stream and the verified
    client certificate's common name. Raises :class:`TlsRefused`."""
    try:
        with anyio.fail_after(TLS_HANDSHAKE_TIMEOUT_S):
            wrapped = await anyio.streams.tls.TLSStream.wrap(
                stream, server_side=True, ssl_context=context, standard_compatible=False
            )
    except TimeoutError:
        raise TlsRefused("TLS handshake timed out") from None
    except anyio.EndOfStream:
        raise TlsRefused("closed before the TLS handshake", before_hello=True) from None
    except (ssl.SSLError, anyio.BrokenResourceError, OSError) as exc:
        raise TlsRefused(f"TLS handshake failed: {_reason(exc)}") from None
    return wrapped, peer_common_name(wrapped)


async def tls_connect(stream: anyio.abc.ByteStream, context: ssl.SSLContext, server_name: str) -> anyio.abc.ByteStream:
    """The client side: verifies the server's certificate names ``server_name``. Raises :class:`TlsRefused`."""
    try:
        with anyio.fail_after(TLS_HANDSHAKE_TIMEOUT_S):
            return await anyio.streams.tls.TLSStream.wrap(
                stream, server_side=False, hostname=server_name, ssl_context=context, standard_compatible=False
            )
    except TimeoutError:
        raise TlsRefused(f"TLS handshake with {server_name} timed out") from None
    except (ssl.SSLError, anyio.BrokenResourceError, anyio.EndOfStream, OSError) as exc:
        raise TlsRefused(f"TLS handshake with {server_name} failed: {_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    if isinstance(cause, ssl.SSLError):
        return cause.reason or type(cause).__name__
    return type(cause).__name__


def peer_common_name(stream: anyio.abc.ByteStream) -> str | None:
    """The subject CN of the peer's verified certificate (``None`` without one)."""
    try:
        cert = stream.extra(anyio.streams.tls.TLSAttribute.peer_certificate)
    except anyio.TypedAttributeLookupError:
        return None
    if not cert:
        return None
    subject: tuple[tuple[tuple[str, str], ...], ...] = cert.get("subject", ())  # type: ignore[assignment]
    for rdn in subject:
        for key, value in rdn:
            if key == "commonName":
                return value
    return None


# -- services' command lines -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class ServiceTls:
    """One service's two contexts: ``server`` for what it serves, ``client`` for the hops it dials."""

    server: ssl.SSLContext
    client: ssl.SSLContext


def service_tls(directory: Path | None, service: str) -> ServiceTls | None:
    """The contexts of ``service`` from the certificates in ``directory``; ``None`` (plain TCP) without one.
    Raises :class:`TlsMaterialMissing` when a file is missing."""
    if directory is None:
        return None
    return ServiceTls(server=server_context(directory, service), client=client_context(directory, service))


def add_serving_arguments(parser: argparse.ArgumentParser) -> None:
    """``--tls-dir`` and ``--max-connections``, which every service's command line takes."""
    parser.add_argument(
        "--tls-dir",
        type=Path,
        help="mutual TLS on every hop with the certificates in DIR (`acqsim certs create`); default: plain TCP,"
        " or DATA_DIR/tls when the configuration says tls = true",
    )
    parser.add_argument(
        "--max-connections", type=int, metavar="N", help="connections served at once (default: the configuration's)"
    )
