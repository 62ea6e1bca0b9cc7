"""The whole path — terminal → NAC → front-end → HSM → ledger and back — over real loopback TCP."""

from __future__ import annotations

from pathlib import Path

import pytest

from acqkit.config import AcqsimConfig
from acqsim.pipeline import running_pipeline
from terminal.pos import PosTerminal
from terminal.session import Original

pytestmark = pytest.mark.anyio


async def test_business_day_through_all_hops(tmp_path: Path) -> None:
    config = AcqsimConfig.default(data_dir=tmp_path)
    good, other, expired, lost, low = (
        config.card(p)
        for p in ("6200001000000003", "6200001000000011", "6200002000000027", "6200003000000033", "6200004000000049")
    )
    async with running_pipeline(config) as pipeline:
        async with PosTerminal(config, "10000001", nac=pipeline.nac) as pos:
            signed = await pos.sign_on()
            assert signed is not None and signed.approved
            balance = await pos.financial("balance", good, pin=good.pin)
            assert balance is not None and balance.approved and balance.fields["54"].endswith(f"{50_000_000:012d}")
            buy = await pos.financial("purchase", good, amount=1234, pin=good.pin)
            assert buy is not None and buy.approved and buy.trusted
            wrong = await pos.financial("purchase", good, amount=100, pin="999999")
            assert wrong is not None and wrong.response_code == "55"
            for card, code in ((expired, "54"), (lost, "41"), (low, "51")):
                declined = await pos.financial("purchase", card, amount=5000, pin=card.pin)
                assert declined is not None and declined.response_code == code
            void = await pos.financial(
                "void", good, amount=1234, original=Original(stan=buy.fields["11"], rrn=buy.fields["37"])
            )
            assert void is not None and void.approved
            pre = await pos.financial("preauth", good, amount=10_000, pin=good.pin)
            assert pre is not None and pre.approved
            done = await pos.financial(
                "preauth_completion",
                good,
                amount=9_000,
                pin=good.pin,
                original=Original(stan=pre.fields["11"], auth_code=pre.fields["38"]),
            )
            assert done is not None and done.approved
            move = await pos.financial("transfer", good, amount=500, pin=good.pin, target_pan=other.pan)
            assert move is not None and move.approved
            buy2 = await pos.financial("purchase", good, amount=700, pin=good.pin)
            assert buy2 is not None and buy2.approved
            refund = await pos.financial(
                "refund",
                good,
                amount=300,
                original=Original(stan=buy2.fields["11"], rrn=buy2.fields["37"], local_date=buy2.fields["13"]),
            )
            assert refund is not None and refund.approved
            settled, _ = await pos.settle()
            assert settled is not None and settled.approved
            assert settled.fields["48"][30] == "1"  # balanced
        async with PosTerminal(config, "10000001", nac=pipeline.nac) as pos:
            after = await pos.financial("balance", good, pin=good.pin)
        assert after is not None
        expected = 50_000_000 - 9_000 - 500 - 700 + 300
        assert after.fields["54"].endswith(f"{expected:012d}")


async def test_terminal_signs_on_again_when_the_host_asks(tmp_path: Path) -> None:
    config = AcqsimConfig.default(data_dir=tmp_path)
    card = config.card("6200001000000003")
    async with running_pipeline(config) as pipeline, PosTerminal(config, "10000001", nac=pipeline.nac) as pos:
        first = await pos.financial("balance", card, pin=card.pin)  # never signed on: it signs on first
        assert first is not None and first.approved
        pos.session.state.batch = "000042"  # out of step with the host
        refused = await pos.financial("balance", card, pin=card.pin)
        assert refused is not None and refused.response_code == "77" and refused.sign_on_again
        again = await pos.financial("balance", card, pin=card.pin)  # signs on again by itself
        assert again is not None and again.approved


async def test_a_terminal_keeping_its_connection_open(tmp_path: Path) -> None:
    config = AcqsimConfig.default(data_dir=tmp_path)
    card = config.card("6200001000000003")
    async with running_pipeline(config) as pipeline:
        async with PosTerminal(config, "10000001", nac=pipeline.nac, keep_alive=True) as kept:
            signed = await kept.sign_on()
            assert signed is not None and signed.approved
            for amount in (100, 200, 300):
                buy = await kept.financial("purchase", card, amount=amount, pin=card.pin)
                assert buy is not None and buy.approved and buy.trusted
            assert kept.connections_opened == 1  # four exchanges, one connection
            await kept.close()  # the line drops: the next exchange opens a new connection
            buy = await kept.financial("purchase", card, amount=400, pin=card.pin)
            assert buy is not None and buy.approved
            assert kept.connections_opened == 2
        async with PosTerminal(config, "10000002", nac=pipeline.nac) as short:
            signed = await short.sign_on()
            buy = await short.financial("purchase", card, amount=100, pin=card.pin)
            assert buy is not None and buy.approved
            assert short.connections_opened == 2  # a short connection per exchange
