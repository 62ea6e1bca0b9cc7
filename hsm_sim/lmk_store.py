"""The LMK at rest: a small JSON file holding the LMK encrypted under a passphrase.

Layout (version 1): ``{"format": "acqsim-lmk", "version": 1, "kdf": "scrypt", "n", "r", "p", "salt",
"nonce", "ciphertext", "kcv", "test"}`` — salt/nonce/ciphertext in hex. The key-encryption key is scrypt(passphrase,
salt, n=2**15, r=8, p=1) → 32 bytes; the LMK is sealed with AES-256-GCM, the header fields bound as associated
data, so a changed KCV, label or parameter fails authentication like a changed ciphertext. Only hsm_sim reads it.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from hsm_sim.keys import Lmk
from wire.paycrypto import CryptoInputError

LMK_FILE_FORMAT: Final = "acqsim-lmk"
LMK_FILE_VERSION: Final = 1
SCRYPT_N: Final = 2**15
SCRYPT_R: Final = 8
SCRYPT_P: Final = 1
SALT_LEN: Final = 16
NONCE_LEN: Final = 12
#: Random bytes in a generated passphrase (``read_passphrase_file(create=True)``).
PASSPHRASE_BYTES: Final = 32


class LmkFileError(Exception):
    """The LMK file is missing, malformed, tampered with, or the passphrase is wrong."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"LMK file {path}: {reason}")
        self.path = path
        self.reason = reason


def random_lmk() -> Lmk:
    """A fresh double-length LMK with odd parity."""
    raw = bytearray(secrets.token_bytes(16))
    for i, byte in enumerate(raw):
        raw[i] = (byte & 0xFE) | (1 - (bin(byte >> 1).count("1") & 1))
    return Lmk(bytes(raw))


def _kek(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode())


def _header_aad(header: dict[str, object]) -> bytes:
    return json.dumps(header, sort_keys=True, separators=(",", ":")).encode()


def write_lmk_file(path: Path, lmk: Lmk, passphrase: str, *, test: bool = False) -> None:
    """Seal ``lmk`` under ``passphrase`` and write it atomically (temp file, fsync, rename), mode 0600."""
    if not passphrase:
        raise LmkFileError(path, "an empty passphrase is refused")
    salt = secrets.token_bytes(SALT_LEN)
    nonce = secrets.token_bytes(NONCE_LEN)
    header: dict[str, object] = {
        "format": LMK_FILE_FORMAT,
        "version": LMK_FILE_VERSION,
        "kdf": "scrypt",
        "n": SCRYPT_N,
        "r": SCRYPT_R,
        "p": SCRYPT_P,
        "salt": salt.hex(),
        "nonce": nonce.hex(),
        "kcv": lmk.check_value,
        "test": test,
    }
    sealed = AESGCM(_kek(passphrase, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)).encrypt(nonce, lmk.key, _header_aad(header))
    body = json.dumps({**header, "ciphertext": sealed.hex()}, indent=2) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(body)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def read_passphrase_file(path: Path, *, create: bool = False) -> str:
    """The passphrase kept in ``path`` (first line); with ``create``, a missing file gets a random one (0600)."""
    try:
        passphrase = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        if not create:
            raise LmkFileError(
                path, "passphrase file not found (set $ACQSIM_LMK_PASSPHRASE to the one the LMK file is sealed under)"
            ) from None
        passphrase = secrets.token_urlsafe(PASSPHRASE_BYTES)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(passphrase + "\n")
        return passphrase
    except (OSError, UnicodeDecodeError) as exc:
        raise LmkFileError(path, f"passphrase file unreadable: {exc}") from None
    if not passphrase:
        raise LmkFileError(path, "the passphrase file is empty")
    return passphrase


def open_or_create_lmk(path: Path, passphrase: str, *, create: bool) -> tuple[Lmk, bool]:
    """The LMK sealed in ``path``; with ``create``, a missing file is made with a fresh random LMK first.
    Returns the LMK and whether it was created now."""
    if create and not path.exists():
        lmk = random_lmk()
        write_lmk_file(path, lmk, passphrase)
        return lmk, True
    return load_lmk_file(path, passphrase), False


def read_lmk_check_value(path: Path) -> str:
    """The KCV recorded in the file (no passphrase needed; authenticated only when the LMK is loaded)."""
    return str(_read_document(path)["kcv"])


def _read_document(path: Path) -> dict[str, object]:
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise LmkFileError(path, "not found (create one with `acqsim hsm lmk create`)") from None
    except (OSError, ValueError) as exc:
        raise LmkFileError(path, f"unreadable: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != LMK_FILE_FORMAT:
        raise LmkFileError(path, f"not an {LMK_FILE_FORMAT} file")
    if document.get("version") != LMK_FILE_VERSION:
        raise LmkFileError(path, f"unsupported version {document.get('version')!r}")
    return document


def load_lmk_file(path: Path, passphrase: str) -> Lmk:
    """Open the LMK file; a wrong passphrase and a tampered file both raise :class:`LmkFileError`."""
    document = _read_document(path)
    header = {k: v for k, v in document.items() if k != "ciphertext"}
    try:
        n, r, p = int(str(header["n"])), int(str(header["r"])), int(str(header["p"]))
        salt = bytes.fromhex(str(header["salt"]))
        nonce = bytes.fromhex(str(header["nonce"]))
        sealed = bytes.fromhex(str(document["ciphertext"]))
    except (KeyError, ValueError):
        raise LmkFileError(path, "malformed fields") from None
    try:
        key = AESGCM(_kek(passphrase, salt, n, r, p)).decrypt(nonce, sealed, _header_aad(header))
    except InvalidTag:
        raise LmkFileError(path, "wrong passphrase or the file was altered (authentication failed)") from None
    except ValueError as exc:
        raise LmkFileError(path, f"bad key-derivation parameters: {exc}") from None
    try:
        lmk = Lmk(key)
    except CryptoInputError as exc:
        raise LmkFileError(path, str(exc)) from None
    if lmk.check_value != header["kcv"]:
        raise LmkFileError(path, "check value does not match the sealed LMK")
    return lmk
