"""The switch link client: an acquirer's way into the switch, and the switch's way to an issuer.

One connection carries many requests at once (:class:`acqkit.multiplex.PeerLink`); an answer is matched to its
request by MTI class, 32 and 37 (the transaction). Every request is MAC'd and every answer's MAC verified under
the zone's ZAK at the sender's own HSM (:class:`ZoneMac`): no clear key outside an HSM.

Errors (all :class:`SwitchLinkError`): :class:`SwitchUnavailable` (lost; :class:`SwitchUnreachable`: could not
connect, so nothing was sent), :class:`SwitchTimeout` (no
answer in time: the request may or may not have been carried out — an acquirer reverses),
:class:`SwitchRejected` (the peer sent the frame back with a reject code in its header),
:class:`AnswerMacFailed` (the answer's MAC does not verify: it cannot be trusted, treat it as no answer).
"""

from __future__ import annotations

import dataclasses
import ssl
from types import TracebackType
from typing import Final, Self

import anyio

from acqkit.multiplex import LinkLost, PeerLink
from acqkit.schemeconfig import SWITCH_TIMEOUT_S
from core_ledger.api import ROUTES, LedgerAnswer, LedgerOp, LedgerRequest
from hsm_sim.client import HsmClient, KeyType, MacAlgorithm
from wire.constants import SECURITY_CONTROL_FORMAT0_TDES, ResponseCode
from wire.errors import FramingError, WireError
from wire.switchlink import (
    DEFAULT_MCC,
    RejectCode,
    SwitchHeader,
    SwitchMessage,
    decode_switch_message,
    mac_field,
    switch_mac_block,
)

#: The names the switch's and every issuer host's certificates carry (``acqsim certs create``, one TEST identity
#: shared by all issuer hosts); with TLS each dialler checks the peer's certificate against them.
SWITCH_TLS_NAME: Final = "scheme"
ISSUER_TLS_NAME: Final = "issuer"
#: The algorithm of the switch link's MAC (PROTOCOL.md §10, docs/scheme.md).
SWITCH_MAC_ALGORITHM: Final = MacAlgorithm.X9_19

MatchKey = tuple[str, str, str]


class SwitchLinkError(Exception):
    """Base of the switch link client's errors."""


class SwitchUnavailable(SwitchLinkError):
    """Could not reach the peer, or the connection was lost before the answer."""


class SwitchUnreachable(SwitchUnavailable):
    """Could not connect: the request was certainly not sent."""


class SwitchTimeout(SwitchLinkError):
    """No answer in time: the request may or may not have been carried out."""


class SwitchRejected(SwitchLinkError):
    def __init__(self, code: RejectCode) -> None:
        super().__init__(f"the peer rejected the message: reject code {code.value} ({code.name.lower()})")
        self.code = code


class AnswerMacFailed(SwitchLinkError):
    """The answer's field 128 does not verify under the zone's ZAK."""


@dataclasses.dataclass(frozen=True, slots=True)
class ZoneMac:
    """MACs under one zone's ZAK, computed and checked by the holder's own HSM."""

    hsm: HsmClient
    zak_under_lmk: str = dataclasses.field(repr=False)

    async def mac(self, block: bytes) -> bytes:
        return await self.hsm.generate_mac(KeyType.ZAK, self.zak_under_lmk, block, SWITCH_MAC_ALGORITHM)

    async def verify(self, message: SwitchMessage) -> bool:
        if message.mac is None:
            return False
        return await self.hsm.verify_mac(
            KeyType.ZAK, self.zak_under_lmk, message.mac_block, message.mac, SWITCH_MAC_ALGORITHM
        )


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class OriginalData:
    """Field 90 of a request that names an earlier transaction (reversal, void, refund, completion)."""

    mti: str
    stan: str
    local_date: str  # MMDD
    local_time: str  # hhmmss


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SwitchRequest:
    """An acquirer's request on the switch link, typed; :meth:`fields` lays it out (PROTOCOL.md §10)."""

    op: LedgerOp
    acquirer_id: str  # 32 and 33: 8 digits
    pan: str = dataclasses.field(repr=False)
    amount: int
    stan: str
    rrn: str  # the acquirer's transaction id: with 32, what every party keys the transaction by
    terminal_id: str
    merchant_id: str
    local_time: str  # hhmmss
    local_date: str  # MMDD
    transmission: str  # MMDDhhmmss
    mcc: str = DEFAULT_MCC
    expiry: str | None = None
    entry_mode: str | None = None
    track2: str | None = dataclasses.field(default=None, repr=False)
    pin_block: bytes | None = dataclasses.field(default=None, repr=False)  # under the acquirer zone's ZPK
    auth_code: str | None = None
    original: OriginalData | None = None
    currency: str = "156"

    def fields(self) -> dict[str, str]:
        mti, processing, condition = ROUTES[self.op]
        fields = {
            "t": mti,
            "2": self.pan,
            "3": processing,
            "4": f"{self.amount:012d}",
            "7": self.transmission,
            "11": self.stan,
            "12": self.local_time,
            "13": self.local_date,
            "18": self.mcc,
            "25": condition,
            "32": self.acquirer_id,
            "33": self.acquirer_id,
            "37": self.rrn,
            "41": self.terminal_id,
            "42": self.merchant_id,
            "49": self.currency,
        }
        optional = {"14": self.expiry, "22": self.entry_mode, "35": self.track2, "38": self.auth_code}
        fields.update({k: v for k, v in optional.items() if v})
        if self.pin_block is not None:
            fields["52"] = self.pin_block.hex().upper()
            fields["53"] = SECURITY_CONTROL_FORMAT0_TDES
        if self.original is not None:
            o = self.original
            fields["90"] = f"{o.mti}{o.stan}{o.local_date}{o.local_time}{self.acquirer_id:0>11}{self.acquirer_id:0>11}"
        return fields


def switch_request(
    request: LedgerRequest, *, pin_block: bytes | None = None, track2: str | None = None, mcc: str = DEFAULT_MCC
) -> SwitchRequest:
    """An acquirer's ledger request as a switch-link request. A reversal carries its original's RRN in 37 (as
    CUP reversals repeat the original's 37): the switch and the issuer find the original by it."""
    original = request.original
    rrn = original.rrn if request.op is LedgerOp.REVERSAL and original is not None and original.rrn else request.rrn
    return SwitchRequest(
        op=request.op,
        acquirer_id=request.acquirer_id,
        pan=request.pan,
        amount=request.amount,
        stan=request.stan,
        rrn=rrn,
        terminal_id=request.terminal_id,
        merchant_id=request.merchant_id,
        local_time=request.local_time,
        local_date=request.local_date,
        transmission=request.transmission,
        mcc=mcc,
        expiry=request.expiry,
        entry_mode=request.pos_entry_mode,
        track2=track2,
        pin_block=pin_block,
        auth_code=request.auth_code,
        original=None
        if original is None
        else OriginalData(
            mti=original.mti, stan=original.stan, local_date=original.local_date, local_time=original.local_time
        ),
        currency=request.currency,
    )


def ledger_answer(answer: SwitchMessage, rrn: str) -> LedgerAnswer:
    """The switch's answer in the ledger's terms (39, 38; ``rrn``: the acquirer's own); a 39 outside the contract
    is a 96."""
    try:
        code = ResponseCode(answer.fields.get("39", ""))
    except ValueError:
        code = ResponseCode.SYSTEM_MALFUNCTION
    return LedgerAnswer(response_code=code, rrn=rrn, auth_code=answer.fields.get("38"))


def match_key(fields: dict[str, str]) -> MatchKey:
    return (fields.get("t", "")[:2], fields.get("32", ""), fields.get("37", ""))


async def encode_with_mac(header: SwitchHeader, fields: dict[str, str], zone: ZoneMac) -> bytes:
    """A whole switch frame payload for ``fields``, MAC'd under the zone's ZAK at the HSM."""
    block = switch_mac_block(fields)
    body = block + mac_field(await zone.mac(block))
    return header.to_bytes(len(body)) + body


def _decode_answer(payload: bytes) -> tuple[MatchKey, SwitchMessage]:
    try:
        message = decode_switch_message(payload)
    except WireError as exc:
        raise FramingError(f"undecodable switch link answer: {exc}", kind="undecodable") from None
    return match_key(message.fields), message


class SwitchLinkClient:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        own_id: str,
        peer_id: str,
        zone: ZoneMac,
        timeout: float = SWITCH_TIMEOUT_S,
        tls: ssl.SSLContext | None = None,
        server_name: str | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.own_id, self.peer_id = own_id, peer_id
        self.zone = zone
        self.timeout = timeout
        self._peer: PeerLink[MatchKey, SwitchMessage] = PeerLink(
            host, port, _decode_answer, what=f"switch link {peer_id}", timeout=timeout, tls=tls, server_name=server_name
        )

    async def exchange(self, fields: dict[str, str], *, timeout: float | None = None) -> SwitchMessage:
        """Send ``fields`` (without 128) and return the peer's verified answer."""
        header = SwitchHeader(destination_id=self.peer_id, source_id=self.own_id, transaction_info=fields.get("11", ""))
        frame = await encode_with_mac(header, fields, self.zone)
        try:
            with anyio.fail_after(self.timeout if timeout is None else timeout):
                try:
                    await self._peer.open()
                except LinkLost as exc:
                    raise SwitchUnreachable(str(exc)) from None
                [answer] = await self._peer.exchange_many([(match_key(fields), frame)])
        except TimeoutError:
            raise SwitchTimeout(f"no answer from {self.peer_id} at {self.host}:{self.port} in time") from None
        except LinkLost as exc:
            raise SwitchUnavailable(str(exc)) from None
        if answer.header.reject_code is not RejectCode.NONE:
            raise SwitchRejected(answer.header.reject_code)
        if not await self.zone.verify(answer):
            raise AnswerMacFailed(f"the answer from {self.peer_id} fails its MAC")
        return answer

    async def aclose(self) -> None:
        await self._peer.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
