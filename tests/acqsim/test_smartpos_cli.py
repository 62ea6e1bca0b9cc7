"""The smart-POS commands as a user runs them: the wallet host as a process (its READY line), the wallet app,
the till in register-only mode, the merchant report (text, JSON, PNG), and a peer that is not there (exit 3)."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import anyio
import pytest

from acqkit.exitcodes import EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE
from acqsim.cli import main
from merchant.model import Sale
from merchant.store import MerchantStore
from wallet.client import WalletClient
from wire.merchantlink import encode_items
from wire.tlvlink import LinkMessage
from wire.walletlink import Kind


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.anyio
async def test_the_wallet_host_runs_as_a_process_and_issues_codes(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "acqsim",
        "wallet",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--db",
        str(tmp_path / "w.db"),
    ]
    process = await anyio.open_process(command)
    try:
        assert process.stdout is not None
        output = b""
        with anyio.fail_after(20):
            while b"READY wallet " not in output or not output.endswith(b"\n"):  # after its serving line
                output += await process.stdout.receive()
        port = int(output.decode().split("READY wallet 127.0.0.1:")[1].split()[0])
        async with WalletClient("127.0.0.1", port) as client:
            answer = await client.request(LinkMessage.of(Kind.CODE, CA="TEST-ALIPAY-1"))
        assert answer.result == "00"
        assert answer["A3"][:2] in {str(n) for n in range(25, 31)}
    finally:
        process.terminate()
        with anyio.fail_after(10):
            await process.wait()
        await process.aclose()


def test_the_wallet_app_says_when_the_host_is_not_there(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["wallet", "code", "--wallet", f"127.0.0.1:{_closed_port()}"]) == EXIT_UNREACHABLE
    assert "wallet" in capsys.readouterr().err
    assert main(["wallet", "pay"]) == EXIT_USAGE


def test_a_cash_sale_needs_no_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ecr", "sale", "--cash", "--item", "tea:8.00x2", "--item", "cake:8.50"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "TOTAL CNY" in out
    assert "24.50" in out
    assert main(["ecr", "sale", "--item", "tea:8.00", "--link", f"127.0.0.1:{_closed_port()}"]) == EXIT_UNREACHABLE
    assert main(["ecr", "sale", "--cash"]) == EXIT_USAGE


def test_the_merchant_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "merchant.sqlite3"
    store = MerchantStore(db)
    store.commit(
        (
            Sale(
                merchant_id="100000000000001",
                terminal_id="10000001",
                reference="r1",
                amount=2400,
                method="CARD",
                at=1_800_000_000.0,
                items=(("coffee", 2, 1200),),
            ),
            Sale(
                merchant_id="100000000000001",
                terminal_id="10000001",
                reference="r2",
                amount=800,
                method="CASH",
                at=1_800_000_000.0,
                items=(("tea", 1, 800),),
            ),
        )
    )
    store.close()
    chart = tmp_path / "chart.png"
    assert (
        main(
            ["merchant", "report", "--db", str(db), "--merchant-id", "100000000000001", "--json", "--plot", str(chart)]
        )
        == EXIT_OK
    )
    report = json.loads(capsys.readouterr().out)
    assert (report["count"], report["total"], report["average_ticket"]) == (2, 3200, 1600)
    assert report["top_items"][0]["name"] == "coffee"
    assert chart.read_bytes().startswith(b"\x89PNG")
    assert encode_items((("tea", 1, 800),)) == "tea*1*800"
