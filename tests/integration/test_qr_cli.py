"""``acqsim pos qr-pay`` and ``qr-order`` as a user runs them, against the in-process pipeline: a scanned code
approved with its receipt; an order QR nobody pays, cancelled at ``--wait``; a code that names no wallet."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from acqkit.config import AcqsimConfig, config_to_toml
from acqkit.exitcodes import EXIT_DECLINED, EXIT_OK, EXIT_USAGE
from acqsim.cli import main
from acqsim.pipeline import running_pipeline
from wallet.client import WalletClient
from wire.tlvlink import LinkMessage
from wire.walletlink import Kind

pytestmark = pytest.mark.anyio


async def test_qr_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = AcqsimConfig.default(data_dir=tmp_path)
    config_file = tmp_path / "acqsim.toml"
    config_file.write_text(config_to_toml(config), encoding="utf-8")
    with anyio.fail_after(60):
        async with running_pipeline(config) as pipeline:
            base = ["pos", "--config", str(config_file), "--nac", str(pipeline.nac)]
            async with WalletClient(pipeline.wallet.host, pipeline.wallet.port) as app:
                code = (await app.request(LinkMessage.of(Kind.CODE, CA="TEST-ALIPAY-1")))["A3"]
            paid = await anyio.to_thread.run_sync(main, [*base, "qr-pay", "12.34", "--code", code])
            out = capsys.readouterr().out
            assert paid == EXIT_OK, out
            assert "QR SALE" in out
            assert "QR ALIPAY" in out
            assert code not in out  # the receipt shows the code masked
            unpaid = await anyio.to_thread.run_sync(main, [*base, "qr-order", "5.00", "--wait", "0.2"])
            out = capsys.readouterr().out
            assert unpaid == EXIT_DECLINED
            assert "acqsim-qr:" in out
            assert "the order is cancelled" in out
            bad = await anyio.to_thread.run_sync(main, [*base, "qr-pay", "1.00", "--code", "9" * 19])
            assert bad == EXIT_USAGE
