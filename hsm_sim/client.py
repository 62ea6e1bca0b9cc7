"""anyio client of the HSM: one method per command, a timeout on every call.

Concurrent callers share one client and one connection, which carries many commands at once
(:class:`acqkit.multiplex.Link`): each request gets its own 4-character header, which the HSM
echoes, and each answer goes to the request with its header (checked again, with the answer code). A
connection that fails is dropped and a new one opened on the next call.
"""

from __future__ import annotations

import dataclasses
import enum
import ssl
from collections.abc import Callable, Sequence
from typing import Final

from acqkit.multiplex import TagAllocator, TagsExhausted
from acqkit.peerclient import PeerClient, PeerError, PeerTimeout, PeerUnavailable
from hsm_sim.commands import MAC_ALGORITHM_BY_NAME
from hsm_sim.errors import ErrorCode
from hsm_sim.keys import KeyType, is_key_under_lmk
from hsm_sim.processor import COMMAND_LEN, HEADER_LEN, response_code
from hsm_sim.trailer import split_trailer, with_trailer
from wire.dukpt import AES_KSN_LEN
from wire.paycrypto import MacAlgorithm

HSM_TIMEOUT_S: Final = 2.0
#: The name the HSM's TLS certificate must carry.
HSM_SERVICE_NAME: Final = "hsm"
#: Headers are handed out in turn from 0000 to 9999, skipping any an answer may still come to (in flight or
#: timed out on the current connection), so at most this many commands can be in flight at once.
HEADERS: Final = 10_000

__all__ = [
    "HSM_TIMEOUT_S",
    "ArqcCheck",
    "DukptPinCheck",
    "GeneratedKey",
    "HsmClient",
    "HsmCommand",
    "HsmError",
    "HsmTimeout",
    "HsmUnavailable",
    "KeyType",
    "MacAlgorithm",
    "PinVerification",
    "is_key_under_lmk",
]


class HsmError(Exception):
    """The HSM answered an error code other than 00/01 (or an answer that does not fit the request)."""

    def __init__(self, command: str, error_code: str, reason: str = "") -> None:
        super().__init__(f"HSM {command} answered error {error_code}{': ' + reason if reason else ''}")
        self.command = command
        self.error_code = error_code


class HsmUnavailable(HsmError, PeerUnavailable):
    """No answer: connection refused, lost, or timed out (:class:`HsmTimeout`)."""

    def __init__(self, command: str, reason: str, *, address: str = "?") -> None:
        PeerUnavailable.__init__(self, "HSM", address, command, reason)
        self.command, self.error_code = command, "--"


class HsmTimeout(HsmUnavailable, PeerTimeout):
    """No answer in time (the command may still be answered, late, on the same connection)."""


class PinVerification(enum.Enum):
    """DC's verdict. The HSM answers a malformed PIN block as a wrong PIN (no PIN oracle), so there is no
    "format error" verdict; ``TRIES_EXCEEDED`` is the HSM's own per-account failure limit (error 29)."""

    OK = "ok"
    WRONG_PIN = "wrong_pin"
    TRIES_EXCEEDED = "tries_exceeded"


@dataclasses.dataclass(frozen=True, slots=True)
class GeneratedKey:
    under_lmk: str
    under_tmk: str | None
    kcv: str = dataclasses.field(repr=False)


# --- sans-IO: commands as data, answers read back (the client sends them; a test may hand them to the
# --- HSM's own processor in-process, hsm_sim/processor.py) --------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class HsmCommand:
    """One host command: its code, its fields (never shown: they may hold a PIN block), and the error codes
    that are answers rather than failures."""

    code: str
    fields: bytes = dataclasses.field(repr=False)
    ok_codes: tuple[str, ...] = (ErrorCode.OK,)

    def payload(self, header: str) -> bytes:
        """The frame payload under the 4-character ``header``."""
        return (header + self.code).encode("ascii") + self.fields


def read_answer(command: HsmCommand, answer: bytes) -> tuple[str, bytes]:
    """The (error code, fields after it) of ``command``'s answer payload; :class:`HsmError` when the answer does
    not fit the command or its error code is a failure."""
    head = answer[: HEADER_LEN + COMMAND_LEN + 2].decode("ascii", "replace")
    if head[HEADER_LEN : HEADER_LEN + COMMAND_LEN] != response_code(command.code):
        raise HsmError(command.code, "??", "answer does not match the request")
    error = head[HEADER_LEN + COMMAND_LEN :]
    if error not in command.ok_codes:
        raise HsmError(command.code, error)
    return error, answer[HEADER_LEN + COMMAND_LEN + 2 :]


def generate_key_command(key_type: KeyType, *, under_tmk: str | None = None) -> HsmCommand:
    """A0: a new key under the LMK (mode 0), also under a TMK or ZMK (mode 1)."""
    fields = ("0" if under_tmk is None else "1") + key_type.code + "U"
    if under_tmk is not None:
        # Zone keys (ZPK, ZAK) travel under a ZMK; terminal keys under the terminal's TMK.
        export_type = KeyType.ZMK if key_type in (KeyType.ZPK, KeyType.ZAK, KeyType.ZMK) else KeyType.TMK
        fields += export_type.code + under_tmk
    return HsmCommand("A0", fields.encode("ascii"))


def generated_key(fields: bytes, *, exported: bool) -> GeneratedKey:
    """A0's answer fields: the key under the LMK, under the TMK/ZMK (``exported``), and its check value."""
    text = fields.decode("ascii")
    under_lmk, rest = text[:33], text[33:]
    under_tmk = None
    if exported:
        under_tmk, rest = rest[1:33], rest[33:]
    return GeneratedKey(under_lmk=under_lmk, under_tmk=under_tmk, kcv=rest)


def _mac_fields(key_type: KeyType, key_under_lmk: str, data: bytes, algorithm: MacAlgorithm) -> bytes:
    head = f"001{MAC_ALGORITHM_BY_NAME[algorithm]}1{key_type.code}{key_under_lmk}{len(data):04X}"
    return head.encode("ascii") + data


def generate_mac_command(key_type: KeyType, key_under_lmk: str, data: bytes, algorithm: MacAlgorithm) -> HsmCommand:
    """M6; its answer fields are the MAC in hex (:func:`generated_mac`)."""
    return HsmCommand("M6", _mac_fields(key_type, key_under_lmk, data, algorithm))


def generated_mac(fields: bytes) -> bytes:
    return bytes.fromhex(fields.decode("ascii"))


def verify_mac_command(
    key_type: KeyType, key_under_lmk: str, data: bytes, mac: bytes, algorithm: MacAlgorithm
) -> HsmCommand:
    """M8; its error code says whether the MAC verified (:func:`mac_verified`)."""
    fields = _mac_fields(key_type, key_under_lmk, data, algorithm) + mac.hex().upper().encode("ascii")
    return HsmCommand("M8", fields, _M8_OK)


def mac_verified(error: str) -> bool:
    return error == ErrorCode.OK


def verify_pin_pvv_command(pin: PinCheck, pin_block_format: str = "01") -> HsmCommand:
    """DC (Visa PVV); its error code is the verdict (:func:`pin_verdict`)."""
    return HsmCommand("DC", _dc_fields(pin, pin_block_format), _DC_OK)


def pin_verdict(error: str) -> PinVerification:
    return _PIN_RESULTS[error]


class HsmClient(PeerClient[str, bytes]):
    """With ``tls`` (a client context of :mod:`acqkit.tls`), the HSM must prove it is ``hsm``."""

    PEER = "HSM"
    SERVICE_NAME = HSM_SERVICE_NAME
    DEFAULT_TIMEOUT_S = HSM_TIMEOUT_S

    def __init__(
        self, host: str, port: int, *, timeout: float | None = None, tls: ssl.SSLContext | None = None
    ) -> None:
        super().__init__(host, port, timeout=timeout, tls=tls)
        self._headers = TagAllocator(HEADERS)

    def decode_answer(self, payload: bytes) -> tuple[str, bytes]:
        answer, _ = split_trailer(payload)
        return answer[:HEADER_LEN].decode("ascii", "replace"), answer

    def unavailable(self, action: str, reason: str) -> HsmUnavailable:
        return HsmUnavailable(action, reason, address=self.address)

    def timed_out(self, action: str) -> HsmTimeout:
        return HsmTimeout(action, "timed out", address=self.address)

    async def _call(self, command: str, fields: bytes, *, ok_codes: tuple[str, ...] = ("00",)) -> tuple[str, bytes]:
        answers = await self.call_many([HsmCommand(command, fields, ok_codes)])
        return answers[0]

    async def call_many(self, commands: Sequence[HsmCommand], *, txn: str | None = None) -> list[tuple[str, bytes]]:
        """Send the commands together (one write) and return each one's (error code, fields after it).
        ``txn``: the transaction id, sent in each command's message trailer (:mod:`hsm_sim.trailer`)."""
        what, tags, requests = self._tagged(commands, txn)
        answered = False
        try:
            answers = await self.exchange(requests, action=what)
            answered = True
        except HsmTimeout:
            raise
        except HsmUnavailable:
            answered = True  # that connection is gone: no answer to these headers can come any more
            raise
        finally:
            self._settle(tags, answered=answered)
        return [read_answer(command, answer) for command, answer in zip(commands, answers, strict=True)]

    def call_many_then(
        self,
        commands: Sequence[HsmCommand],
        done: Callable[[list[tuple[str, bytes]] | HsmError | None], object],
        *,
        txn: str | None = None,
    ) -> bool:
        """:meth:`call_many` for a caller stepped from the loop's callbacks (:meth:`PeerClient.exchange_then`):
        ``done`` gets each command's (error code, fields), or the :class:`HsmError` :meth:`call_many` would
        raise, or ``None`` when the link was lost meanwhile (then run :meth:`call_many`). ``False``: not on a
        callback link now; use :meth:`call_many`."""
        what, tags, requests = self._tagged(commands, txn)

        def ended(result: list[bytes] | PeerError | None) -> None:
            self._settle(tags, answered=not isinstance(result, HsmTimeout))
            if result is None:
                done(None)
            elif isinstance(result, HsmError):
                done(result)
            elif isinstance(result, PeerError):  # never: this client makes only HSM errors
                raise result
            else:
                try:
                    done([read_answer(command, answer) for command, answer in zip(commands, result, strict=True)])
                except HsmError as exc:
                    done(exc)

        if self.exchange_then(requests, ended, action=what):
            return True
        self._settle(tags, answered=True)  # nothing was sent
        return False

    def _tagged(
        self, commands: Sequence[HsmCommand], txn: str | None
    ) -> tuple[str, list[int], list[tuple[str, bytes]]]:
        """What the commands are called in errors, the header tags taken for them, and their requests."""
        what = "+".join(command.code for command in commands)
        generation = self.generation
        tags: list[int] = []
        try:
            tags += [self._headers.take(generation) for _ in commands]
        except TagsExhausted as exc:
            for tag in tags:
                self._headers.answered(tag)
            raise self.unavailable(what, str(exc)) from None
        trailer = with_trailer(b"", txn)  # the same for every command of the call: checked once
        requests = []
        for tag, command in zip(tags, commands, strict=True):
            header = f"{tag:04d}"
            requests.append((header, command.payload(header) + trailer))
        return what, tags, requests

    def _settle(self, tags: list[int], *, answered: bool) -> None:
        """The tags of a call that ended: free again, or — timed out or cancelled, the answer may still come on
        this connection — kept until it does."""
        for tag in tags:
            if answered:
                self._headers.answered(tag)
            else:
                self._headers.abandoned(tag, self.generation)

    async def diagnostics(self) -> str:
        _, fields = await self._call("NC", b"")
        return fields[:16].decode("ascii")

    async def generate_key(self, key_type: KeyType, *, under_tmk: str | None = None) -> GeneratedKey:
        command = generate_key_command(key_type, under_tmk=under_tmk)
        ((_, answer),) = await self.call_many([command])
        return generated_key(answer, exported=under_tmk is not None)

    async def import_key(self, key_type: KeyType, zmk_under_lmk: str, key_under_zmk: str) -> GeneratedKey:
        """A6: a key under a ZMK (32H) → the key under the LMK and its check value."""
        fields = f"{key_type.code}{zmk_under_lmk}X{key_under_zmk}U"
        _, answer = await self._call("A6", fields.encode("ascii"))
        text = answer.decode("ascii")
        return GeneratedKey(under_lmk=text[:33], under_tmk=None, kcv=text[33:])

    async def form_key_from_components(self, key_type: KeyType, components: Sequence[str]) -> GeneratedKey:
        """A4: clear components (each 32H, odd parity) → the key under the LMK and its check value. The HSM
        answers 68 unless its configuration allows clear import (TEST key ceremonies only)."""
        fields = f"{len(components)}{key_type.code}U" + "".join(component.upper() for component in components)
        _, answer = await self._call("A4", fields.encode("ascii"))
        text = answer.decode("ascii")
        return GeneratedKey(under_lmk=text[:33], under_tmk=None, kcv=text[33:])

    async def key_check_value(self, key_type: KeyType, key_under_lmk: str) -> str:
        _, answer = await self._call("BU", (key_type.code + key_under_lmk).encode("ascii"))
        return answer.decode("ascii")

    async def generate_mac(self, key_type: KeyType, key_under_lmk: str, data: bytes, algorithm: MacAlgorithm) -> bytes:
        ((_, answer),) = await self.call_many([generate_mac_command(key_type, key_under_lmk, data, algorithm)])
        return generated_mac(answer)

    async def verify_mac(
        self, key_type: KeyType, key_under_lmk: str, data: bytes, mac: bytes, algorithm: MacAlgorithm
    ) -> bool:
        ((error, _),) = await self.call_many([verify_mac_command(key_type, key_under_lmk, data, mac, algorithm)])
        return mac_verified(error)

    async def translate_pin(
        self,
        tpk_under_lmk: str,
        zpk_under_lmk: str,
        pin_block: bytes,
        pan: str,
        *,
        src_format: str = "01",
        dst_format: str = "01",
    ) -> bytes:
        fields = f"{tpk_under_lmk}{zpk_under_lmk}12{pin_block.hex().upper()}{src_format}{dst_format}{pan[-13:-1]}"
        _, answer = await self._call("CA", fields.encode("ascii"))
        return bytes.fromhex(answer[2:18].decode("ascii"))

    async def verify_pin_pvv(
        self,
        tpk_under_lmk: str,
        pvk_under_lmk: str,
        pin_block: bytes,
        pan: str,
        *,
        pvki: str,
        pvv: str,
        pin_block_format: str = "01",
    ) -> PinVerification:
        command = verify_pin_pvv_command((tpk_under_lmk, pvk_under_lmk, pin_block, pan, pvki, pvv), pin_block_format)
        ((error, _),) = await self.call_many([command])
        return pin_verdict(error)

    async def verify_mac_and_pin_pvv(self, mac: MacCheck, pin: PinCheck) -> tuple[bool, PinVerification]:
        """M8 and DC sent together, answered in one round trip (a request's MAC and its PIN)."""
        (mac_error, _), (pin_error, _) = await self.call_many([verify_mac_command(*mac), verify_pin_pvv_command(pin)])
        return mac_verified(mac_error), pin_verdict(pin_error)

    async def translate_pin_zone(
        self, source_zpk_under_lmk: str, destination_zpk_under_lmk: str, pin_block: bytes, pan: str
    ) -> bytes:
        """CC: a format-0 PIN block under one zone's ZPK → under another's (the scheme switch's step)."""
        keys = f"{source_zpk_under_lmk}{destination_zpk_under_lmk}"
        fields = f"{keys}12{pin_block.hex().upper()}0101{pan[-13:-1]}"
        _, answer = await self._call("CC", fields.encode("ascii"))
        return bytes.fromhex(answer[2:18].decode("ascii"))

    async def verify_interchange_pin_pvv(
        self, zpk_under_lmk: str, pvk_under_lmk: str, pin_block: bytes, pan: str, *, pvki: str, pvv: str
    ) -> PinVerification:
        """EC: a format-0 PIN block under a ZPK (arrived from the switch) against a Visa PVV (the issuer's step)."""
        fields = _dc_fields((zpk_under_lmk, pvk_under_lmk, pin_block, pan, pvki, pvv), "01")
        error, _ = await self._call("EC", fields, ok_codes=_DC_OK)
        return pin_verdict(error)

    async def verify_arqc(self, check: ArqcCheck) -> bytes | None:
        """KQ mode 1: the ARPC (method 1) when the ARQC verifies, ``None`` when it does not (error 01)."""
        ((error, fields),) = await self.call_many([arqc_command(check, KQ_VERIFY_AND_ARPC)])
        return arpc_of(fields) if error == ErrorCode.OK else None

    async def verify_dukpt_pin_pvv(self, check: DukptPinCheck) -> PinVerification:
        """GQ: a PIN block under a TDES DUKPT PIN key, verified against the card's PVV."""
        ((error, _),) = await self.call_many([dukpt_pin_command(check)])
        return pin_verdict(error)

    async def decrypt_data(self, kind: str, key_under_lmk: str, data: bytes, *, ksn: bytes = b"", cbc: bool) -> bytes:
        """M2: ``kind`` T (TDES DUKPT BDK + ``ksn``), A (AES DUKPT BDK + ``ksn``) or D (TDK); clear data back."""
        ((_, fields),) = await self.call_many([decrypt_data_command(kind, key_under_lmk, data, ksn=ksn, cbc=cbc)])
        return decrypted_data(fields)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ArqcCheck:
    """What :meth:`HsmClient.verify_arqc` sends: the issuer key, the card, the ATC, the data the ARQC covers,
    the ARQC and the answer code the ARPC carries. ``repr`` hides the PAN."""

    imk_under_lmk: str
    pan: str = dataclasses.field(repr=False)
    psn: str
    atc: bytes
    data: bytes
    arqc: bytes
    arc: str
    pboc: bool = True


#: KQ modes: verify the ARQC; verify it and answer the ARPC; answer the ARPC only (hsm_sim/commands/emv_commands.py).
KQ_VERIFY: Final = "0"
KQ_VERIFY_AND_ARPC: Final = "1"
KQ_ARPC_ONLY: Final = "2"


def arqc_command(check: ArqcCheck, mode: str) -> HsmCommand:
    """KQ (ARPC method 1); error 01 means the ARQC did not verify (:func:`arqc_verified`, :func:`arpc_of`)."""
    method = "P" if check.pboc else "E"
    fields = (
        f"{mode}{method}1{check.imk_under_lmk}{len(check.pan):02d}{check.pan}{check.psn}{check.atc.hex().upper()}"
        f"{len(check.data):03d}{check.data.hex().upper()}{check.arqc.hex().upper()}{check.arc.encode().hex()}"
    )
    return HsmCommand("KQ", fields.encode("ascii"), _M8_OK)


def arqc_verified(error: str) -> bool:
    return error == ErrorCode.OK


def arpc_of(fields: bytes) -> bytes:
    return bytes.fromhex(fields.decode("ascii"))


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DukptPinCheck:
    """What GQ verifies: a PIN block under the DUKPT PIN key of ``ksn`` (BDK under the LMK), against the PVV.
    ``repr`` hides the card's data."""

    bdk_under_lmk: str
    pvk_under_lmk: str
    ksn: bytes
    pin_block: bytes = dataclasses.field(repr=False)
    pan: str = dataclasses.field(repr=False)
    pvki: str = dataclasses.field(repr=False)
    pvv: str = dataclasses.field(repr=False)


def dukpt_pin_command(check: DukptPinCheck) -> HsmCommand:
    """GQ; its error code is the verdict (:func:`pin_verdict`), as DC's. A 12-byte KSN is an AES DUKPT reader's:
    GQ's AES layout (a format 4 block, with the whole PAN)."""
    if len(check.ksn) == AES_KSN_LEN:
        aes = (
            f"A{check.bdk_under_lmk}{check.pvk_under_lmk}{check.ksn.hex().upper()}{check.pin_block.hex().upper()}"
            f"{len(check.pan):02d}{check.pan}{check.pvki}{check.pvv}"
        )
        return HsmCommand("GQ", aes.encode("ascii"), _DC_OK)
    fields = (
        f"{check.bdk_under_lmk}{check.pvk_under_lmk}{check.ksn.hex().upper()}{check.pin_block.hex().upper()}01"
        f"{check.pan[-13:-1]}{check.pvki}{check.pvv}"
    )
    return HsmCommand("GQ", fields.encode("ascii"), _DC_OK)


def decrypt_data_command(kind: str, key_under_lmk: str, data: bytes, *, ksn: bytes = b"", cbc: bool) -> HsmCommand:
    """M2: ``kind`` T / A (a DUKPT BDK and the ``ksn``) or D (a TDK); the clear data: :func:`decrypted_data`."""
    fields = f"{kind}{key_under_lmk}{ksn.hex().upper()}{int(cbc)}{len(data):04d}{data.hex().upper()}"
    return HsmCommand("M2", fields.encode("ascii"))


def decrypted_data(fields: bytes) -> bytes:
    return bytes.fromhex(fields[4:].decode("ascii"))


#: (key type, MAK under LMK, data, MAC, algorithm) for :meth:`HsmClient.verify_mac_and_pin_pvv`.
MacCheck = tuple[KeyType, str, bytes, bytes, MacAlgorithm]
#: (TPK under LMK, PVK under LMK, PIN block, PAN, PVKI, PVV) for :meth:`HsmClient.verify_mac_and_pin_pvv`.
PinCheck = tuple[str, str, bytes, str, str, str]

_M8_OK: Final = (ErrorCode.OK, ErrorCode.VERIFICATION_FAILED)
_DC_OK: Final = (ErrorCode.OK, ErrorCode.VERIFICATION_FAILED, ErrorCode.KEY_FUNCTION_NOT_PERMITTED)
_PIN_RESULTS: Final[dict[str, PinVerification]] = {
    ErrorCode.OK: PinVerification.OK,
    ErrorCode.VERIFICATION_FAILED: PinVerification.WRONG_PIN,
    ErrorCode.KEY_FUNCTION_NOT_PERMITTED: PinVerification.TRIES_EXCEEDED,
}


def _dc_fields(pin: PinCheck, pin_block_format: str) -> bytes:
    tpk_under_lmk, pvk_under_lmk, pin_block, pan, pvki, pvv = pin
    text = f"{tpk_under_lmk}{pvk_under_lmk}{pin_block.hex().upper()}{pin_block_format}{pan[-13:-1]}{pvki}{pvv}"
    return text.encode("ascii")
