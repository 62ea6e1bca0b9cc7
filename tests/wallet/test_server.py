"""The wallet host over real loopback TCP: the client, a malformed frame (ERRR, the connection carries on),
a host that is down, and a store that fails (answers 96, charges nothing)."""

from __future__ import annotations

import functools
from pathlib import Path

import anyio
import pytest

from acqkit.netio import connect
from tests.wallet.helpers import ACCOUNT, MERCHANT, TERMINAL, Clock
from wallet.client import WalletClient, WalletUnavailable
from wallet.model import Record
from wallet.seed import OPENING_BALANCE
from wallet.server import WalletHost, serve
from wallet.store import WalletStore, WalletStoreError
from wire.tlvlink import LinkMessage, decode_message, encode_message
from wire.walletlink import WALLET_LINK, Kind

pytestmark = pytest.mark.anyio
STEP_S = 5.0


def _pay(code: str, stan: str, amount: int = 1234) -> LinkMessage:
    return LinkMessage.of(Kind.PAY, TI=TERMINAL, MI=MERCHANT, ST=stan, DT="1204", AM=amount, A3=code)


async def test_pay_by_code_over_tcp_and_a_bad_frame_costs_only_itself(tmp_path: Path) -> None:
    host = WalletHost(WalletStore(tmp_path / "w.sqlite3"), clock=Clock())
    with anyio.fail_after(STEP_S * 2):
        async with anyio.create_task_group() as tg:
            port = await tg.start(functools.partial(serve, "127.0.0.1", 0, wallet=host))
            async with WalletClient("127.0.0.1", port) as client:
                code = (await client.request(LinkMessage.of(Kind.CODE, CA=ACCOUNT)))["A3"]
                # A raw connection sends garbage, then a good request on the same connection.
                conn = await connect("127.0.0.1", port, timeout=STEP_S)
                await conn.send(b"MT004PAYCAM003x12")
                error = decode_message(await conn.receive(STEP_S) or b"", WALLET_LINK)
                assert error.kind == Kind.ERROR
                assert error.result == "30"
                assert "AM" in error["TX"]
                await conn.send(b"MT004BALNCA015" + ACCOUNT.encode())
                balance = decode_message(await conn.receive(STEP_S) or b"", WALLET_LINK)
                assert balance["BL"] == str(OPENING_BALANCE)
                await conn.aclose()
                answer = await client.request(_pay(code, "000001"))
                assert answer.result == "00"
                assert (await client.request(_pay(code, "000002"))).result == "94"
                left = await client.request(LinkMessage.of(Kind.BALANCE, CA=ACCOUNT))
                assert left["BL"] == str(OPENING_BALANCE - 1234)
            tg.cancel_scope.cancel()
    host.wallet_store.close()


async def test_a_host_that_is_down_is_unavailable() -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()  # nothing listens there now
    async with WalletClient("127.0.0.1", port, timeout=STEP_S) as client:
        with pytest.raises(WalletUnavailable):
            await client.request(LinkMessage.of(Kind.CODE, CA=ACCOUNT))


class _FailingStore(WalletStore):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.fail = False

    def commit(self, records: tuple[Record, ...]) -> None:
        if self.fail:
            raise WalletStoreError("disk full (test)")
        super().commit(records)


async def test_a_failing_store_stops_decisions_and_charges_nothing(tmp_path: Path) -> None:
    store = _FailingStore(tmp_path / "w.sqlite3")
    host = WalletHost(store, clock=Clock())
    code = (await host.respond(b"MT004CODECA015" + ACCOUNT.encode()))["A3"]
    store.fail = True
    answer = await host.respond(_encoded(_pay(code, "000001")))
    assert answer.result == "96"
    store.fail = False
    assert (await host.respond(_encoded(_pay(code, "000002")))).result == "96"  # stays stopped
    reopened = WalletStore(tmp_path / "w.sqlite3").load()
    assert reopened.accounts[ACCOUNT].balance == OPENING_BALANCE
    assert not reopened.codes[code].used
    store.close()


def _encoded(message: LinkMessage) -> bytes:
    return encode_message(message, WALLET_LINK)
