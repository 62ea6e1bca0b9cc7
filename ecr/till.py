"""The till's I/O: a sale paid by card through the terminal's ECR link, or in cash (register-only mode), then
recorded with the merchant platform (a platform that is down costs the record, never the sale: the till says
so). One :class:`Till` per cash register."""

from __future__ import annotations

import dataclasses
import logging
import ssl
from types import TracebackType
from typing import Final, Self

from acqkit.config import Endpoint
from acqkit.tlvclient import LinkError, TlvLinkClient
from ecr.register import Basket
from merchant.client import MerchantClient, MerchantError, Signer
from wire.ecrlink import ECR_LINK, EcrKind
from wire.merchantlink import MerchantKind, encode_items
from wire.tlvlink import LinkMessage

log = logging.getLogger("acqsim.ecr")

#: How long the till waits for the terminal: the customer inserts the card and types the PIN.
CARD_SALE_TIMEOUT_S: Final = 90.0
APPROVED: Final = "00"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TillResult:
    method: str  # CARD or CASH
    result: str  # response code; "00" for cash
    answer: LinkMessage | None = None  # the terminal's answer (card)
    recorded: bool = False

    @property
    def approved(self) -> bool:
        return self.result == APPROVED


class Till:
    def __init__(
        self,
        *,
        merchant_id: str,
        terminal_id: str,
        link: Endpoint | None = None,
        platform: Endpoint | None = None,
        platform_tls: ssl.SSLContext | None = None,
        platform_signer: Signer | None = None,
        timeout: float = CARD_SALE_TIMEOUT_S,
    ) -> None:
        """``platform_tls``: the till's client context when the platform serves mutual TLS (``tls = true``);
        ``platform_signer``: how its requests to the platform are signed (its terminal's merchant-link key)."""
        self.merchant_id, self.terminal_id = merchant_id, terminal_id
        self.terminal = None if link is None else TlvLinkClient(link.host, link.port, ECR_LINK, timeout=timeout)
        self.platform = (
            None
            if platform is None
            else MerchantClient(platform.host, platform.port, tls=platform_tls, signer=platform_signer)
        )

    async def aclose(self) -> None:
        for client in (self.terminal, self.platform):
            if client is not None:
                await client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def _terminal(self) -> TlvLinkClient:
        if self.terminal is None:
            raise ValueError("no terminal link configured: give --link, or sell for cash")
        return self.terminal

    async def sell(self, basket: Basket, *, cash: bool = False) -> TillResult:
        """Charge ``basket.total``; raises :class:`~acqkit.tlvclient.LinkError` if the terminal is unreachable."""
        if cash:
            result = TillResult(method="CASH", result=APPROVED)
        else:
            answer = await self._terminal().request(LinkMessage.of(EcrKind.SALE, AM=basket.total, ER=basket.reference))
            result = TillResult(method="CARD", result=answer.result or "", answer=answer)
        if result.approved:
            result = dataclasses.replace(result, recorded=await self.record(basket, result.method))
        return result

    async def void(self, reference: str) -> LinkMessage:
        return await self._terminal().request(LinkMessage.of(EcrKind.VOID, ER=reference))

    async def status(self, reference: str | None = None) -> LinkMessage:
        return await self._terminal().request(LinkMessage.of(EcrKind.STATUS, ER=reference))

    async def record(self, basket: Basket, method: str) -> bool:
        """Record a sale for the analytics; ``False`` (and a warning) if the platform did not take it."""
        if self.platform is None:
            return False
        message = LinkMessage.of(
            MerchantKind.SALE,
            MI=self.merchant_id,
            TI=self.terminal_id,
            ER=basket.reference,
            AM=basket.total,
            PY=method,
            IT=encode_items(basket.item_triples()) or None,
        )
        try:
            answer = await self.platform.request(message)
        except MerchantError as exc:
            log.warning("sale %s not recorded: %s", basket.reference, exc)
            return False
        return answer.result == APPROVED

    async def redeem_coupon(self, basket: Basket, code: str) -> tuple[Basket, LinkMessage]:
        """The basket with the coupon's discount, and the platform's answer (the basket unchanged if refused)."""
        if self.platform is None:
            raise ValueError("no merchant platform configured: give --platform to redeem a coupon")
        answer = await self.platform.request(
            LinkMessage.of(
                MerchantKind.COUPON_REDEEM, MI=self.merchant_id, CP=code, AM=basket.subtotal, ER=basket.reference
            )
        )
        if answer.result != APPROVED:
            return basket, answer
        return basket.with_discount(int(answer["DA"])), answer


__all__ = ["LinkError", "Till", "TillResult"]
