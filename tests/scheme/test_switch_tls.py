"""Mutual TLS on the switch link (docs/scheme.md): both legs, acquirer → switch and switch → issuer B, carry an
off-us purchase with its PIN under certificates from ``acqsim certs create``; a client without a certificate,
or one that expects another name, is refused and the switch keeps serving."""

from __future__ import annotations

import datetime as dt
import logging
import ssl
from pathlib import Path

import pytest

from acqkit.tls import client_context, create_all
from acqsim.fourparty import DEBIT_B, HOST, ISSUER_B_ID, SWITCH_ID, World, running_world
from core_ledger.api import LedgerOp
from hsm_sim.client import HsmClient, HsmUnavailable
from scheme.client import ISSUER_TLS_NAME, SWITCH_TLS_NAME, SwitchLinkClient, SwitchLinkError, ZoneMac
from wire.constants import ResponseCode

pytestmark = pytest.mark.anyio
CLOCK = dt.datetime(2026, 12, 4, 9, 30, tzinfo=dt.UTC)


async def _purchase_code(world: World, amount: int) -> str:
    request = world.request(LedgerOp.PURCHASE, DEBIT_B, amount, pin_block=await world.pin_block(DEBIT_B))
    answer = await world.send(request)
    return answer.fields["39"]


def _stranger(world: World, tls: ssl.SSLContext, server_name: str) -> SwitchLinkClient:
    return SwitchLinkClient(
        HOST,
        world.switch_port,
        own_id=ISSUER_B_ID,
        peer_id=SWITCH_ID,
        zone=ZoneMac(world.acquirer_hsm, world.acquirer_keys["zak"]),
        timeout=3.0,
        tls=tls,
        server_name=server_name,
    )


async def test_off_us_purchase_over_tls_and_refused_clients(tmp_path: Path) -> None:
    tls_dir = tmp_path / "tls"
    create_all(tls_dir)
    async with running_world(tmp_path, clock=CLOCK, tls_dir=tls_dir) as world:
        assert await _purchase_code(world, 1_234) == ResponseCode.APPROVED  # issuer B serves TLS only: both legs TLS

        no_certificate = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        no_certificate.load_verify_locations(cafile=tls_dir / "ca.pem")
        async with _stranger(world, no_certificate, SWITCH_TLS_NAME) as anonymous:
            with pytest.raises(SwitchLinkError):
                await anonymous.exchange(world.request(LedgerOp.PURCHASE, DEBIT_B, 100).fields())

        # a client that expects the switch to be an issuer host refuses the switch's certificate
        async with _stranger(world, client_context(tls_dir, "frontend"), ISSUER_TLS_NAME) as misdirected:
            with pytest.raises(SwitchLinkError):
                await misdirected.exchange(world.request(LedgerOp.PURCHASE, DEBIT_B, 100).fields())

        assert await _purchase_code(world, 100) == ResponseCode.APPROVED  # the switch kept serving


async def test_each_partys_hsm_admits_only_that_party_under_tls(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tls_dir = tmp_path / "tls"
    create_all(tls_dir)
    async with running_world(tmp_path, clock=CLOCK, tls_dir=tls_dir) as world:
        assert await _purchase_code(world, 1_000) == ResponseCode.APPROVED  # each party reached its own HSM
        with caplog.at_level(logging.WARNING, logger="acqsim.hsm"):
            for party, stranger in (("sw", ISSUER_TLS_NAME), ("b", SWITCH_TLS_NAME), ("b", "frontend")):
                hsm = await HsmClient.connect(
                    HOST, world.hsm_ports[party], tls=client_context(tls_dir, stranger), timeout=3.0
                )
                async with hsm:
                    with pytest.raises(HsmUnavailable):
                        await hsm.diagnostics()
                refusals = [r.getMessage() for r in caplog.records if "not an allowed client" in r.getMessage()]
                assert refusals and f"({stranger}) refused" in refusals[-1]
        assert await _purchase_code(world, 100) == ResponseCode.APPROVED  # the HSMs kept serving their own party
