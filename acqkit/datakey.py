"""The data key: what services use to keep card data they must hold unreadable at rest.

One random 256-bit key per data folder, kept in ``keys/data.key`` encrypted (AES-256-GCM) under a key derived
from a passphrase (scrypt). Two keys are derived from it, each for one job:

- PAN fingerprints: HMAC-SHA-256 of the PAN under the fingerprint key. Unlike a plain hash of a PAN (a
  16-digit PAN with a known BIN and Luhn digit falls to brute force in well under a second), a keyed
  fingerprint cannot be reversed without the key.
- Sealing: AES-256-GCM (a random 96-bit nonce per value) for card data a service must keep a while, such as
  a front-end's pending request or store-and-forward reversal (both hold the card number until settled).

The passphrase comes from ``ACQSIM_DATA_KEY_PASSPHRASE``. Without it the documented TEST passphrase is used
and a warning says so: TEST material, fit for a simulator on loopback, never for real card data.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

log = logging.getLogger("acqsim.keys")

PASSPHRASE_ENV: Final = "ACQSIM_DATA_KEY_PASSPHRASE"  # noqa: S105 - the variable's name, not a secret
#: TEST passphrase, used (with a warning) when the environment names none. Test material only.
TEST_PASSPHRASE: Final = "acqsim TEST data key passphrase"  # noqa: S105 - documented TEST material
KEY_FILE: Final = "data.key"
KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12
#: scrypt cost (2**14, r 8, p 1: about 16 MiB and tens of milliseconds, once per process that opens the key).
SCRYPT_N: Final = 2**14
SCRYPT_R: Final = 8
SCRYPT_P: Final = 1
FORMAT_VERSION: Final = 1
#: Fingerprints a key remembers (about 0.1 µs a hit against 2–30 µs for the HMAC: OpenSSL 3 fetches the
#: algorithm on every one-shot call, and a front-end takes two or three per purchase — a PIN try reserved, then
#: released or counted). Past this many cards the memo starts afresh: memory stays bounded, about 0.6 MB.
FINGERPRINT_MEMO: Final = 4096


class DataKeyError(Exception):
    """The data key file cannot be read or opened (wrong passphrase, tampered, unknown format)."""


def _kek(passphrase: str, salt: bytes) -> bytes:
    return Scrypt(salt=salt, length=KEY_BYTES, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P).derive(passphrase.encode())


_warned: list[bool] = []  # the TEST-passphrase warning, once per process


def _passphrase() -> str:
    value = os.environ.get(PASSPHRASE_ENV)
    if value:
        return value
    if not _warned:
        _warned.append(True)
        log.warning("%s is not set: the data key is under the TEST passphrase (test material only)", PASSPHRASE_ENV)
    return TEST_PASSPHRASE


class DataKey:
    """A data key in memory; ``repr`` never shows it."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise DataKeyError("a data key is 32 bytes")
        self._fingerprint_key = hmac.new(key, b"acqsim PAN fingerprint v1", hashlib.sha256).digest()
        self._seal = AESGCM(hmac.new(key, b"acqsim seal v1", hashlib.sha256).digest())
        #: PAN → fingerprint, in this process's memory only (as the requests in flight hold their PANs).
        self._fingerprints: dict[str, str] = {}

    def __repr__(self) -> str:
        return "DataKey(…)"

    @classmethod
    def ephemeral(cls) -> DataKey:
        """A key that lives only in this process (an in-memory store)."""
        return cls(os.urandom(KEY_BYTES))

    @classmethod
    def load_or_create(cls, folder: Path, passphrase: str | None = None) -> DataKey:
        """The data key of ``folder`` (``folder/data.key``), created on first use (file mode 0600)."""
        path = folder / KEY_FILE
        secret = passphrase if passphrase is not None else _passphrase()
        if path.exists():
            return cls(_open_file(path, secret))
        key = os.urandom(KEY_BYTES)
        salt, nonce = os.urandom(16), os.urandom(NONCE_BYTES)
        wrapped = AESGCM(_kek(secret, salt)).encrypt(nonce, key, b"acqsim data key")
        document = {
            "version": FORMAT_VERSION,
            "kdf": {"name": "scrypt", "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P, "salt": salt.hex()},
            "nonce": nonce.hex(),
            "wrapped": wrapped.hex(),
        }
        folder.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(document, handle)
        os.replace(temporary, path)  # atomic: two processes starting at once agree on one key or fail cleanly
        return cls(_open_file(path, secret))

    def fingerprint(self, pan: str) -> str:
        """HMAC-SHA-256 of ``pan`` under the fingerprint key, as hex: the same card always gives the same value.
        Remembered (:data:`FINGERPRINT_MEMO` cards); safe from several threads (each step is one dict call)."""
        known = self._fingerprints.get(pan)
        if known is not None:
            return known
        value = hmac.digest(self._fingerprint_key, pan.encode(), "sha256").hex()  # one-shot: no HMAC object
        if len(self._fingerprints) >= FINGERPRINT_MEMO:
            self._fingerprints.clear()  # bounded; clear() is atomic where evicting one entry would race
        self._fingerprints[pan] = value
        return value

    def seal(self, plaintext: str) -> str:
        """``plaintext`` encrypted and authenticated, as base64 text (nonce ‖ ciphertext ‖ tag)."""
        nonce = os.urandom(NONCE_BYTES)
        return base64.b64encode(nonce + self._seal.encrypt(nonce, plaintext.encode(), None)).decode("ascii")

    def open(self, sealed: str) -> str:
        """The text :meth:`seal` sealed; :class:`DataKeyError` if it was altered or sealed under another key."""
        try:
            raw = base64.b64decode(sealed, validate=True)
            return self._seal.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], None).decode()
        except (ValueError, InvalidTag) as exc:
            raise DataKeyError("sealed data does not open under this data key") from exc


def _open_file(path: Path, passphrase: str) -> bytes:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if document.get("version") != FORMAT_VERSION:
            raise DataKeyError(f"{path}: unknown data key format {document.get('version')!r}")
        kdf = document["kdf"]
        kek = Scrypt(salt=bytes.fromhex(kdf["salt"]), length=KEY_BYTES, n=kdf["n"], r=kdf["r"], p=kdf["p"]).derive(
            passphrase.encode()
        )
        return AESGCM(kek).decrypt(
            bytes.fromhex(document["nonce"]), bytes.fromhex(document["wrapped"]), b"acqsim data key"
        )
    except InvalidTag:
        raise DataKeyError(f"{path}: wrong passphrase ({PASSPHRASE_ENV}), or the file was altered") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataKeyError(f"{path}: cannot read the data key ({type(exc).__name__})") from None
