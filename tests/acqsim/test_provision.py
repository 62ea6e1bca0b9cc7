"""The key ceremony against a real HSM server: the TEST keys go in as components, only cryptograms come back;
a second run re-imports nothing; a changed key is replaced; a store under another LMK, or an HSM that refuses
clear components, is a clear error."""

from __future__ import annotations

import dataclasses
import functools
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest

from acqkit.config import TEST_TMK_1, AcqsimConfig
from acqkit.keystore import read_key_store
from acqsim.provision import CeremonyError, key_ceremony
from hsm_sim.client import HsmClient
from hsm_sim.processor import HsmProcessor
from hsm_sim.server import serve
from wire.merchantlink import derive_test_link_key

UP_TIMEOUT_S = 60


@asynccontextmanager
async def hsm_at(processor: HsmProcessor) -> AsyncIterator[HsmClient]:
    async with anyio.create_task_group() as tg:
        port = await tg.start(functools.partial(serve, "127.0.0.1", 0, processor=processor))
        async with await HsmClient.connect("127.0.0.1", port) as client:
            yield client
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_the_ceremony_loads_once_and_reuses_the_store(tmp_path: Path) -> None:
    config = AcqsimConfig.default(data_dir=tmp_path)
    processor = HsmProcessor.with_random_lmk(allow_clear_import=True)
    async with hsm_at(processor) as hsm:
        first = await key_ceremony(config, hsm)
        assert set(first.entries) == {
            *("tmk/10000001", "tmk/10000002", "pvk", "imk/ac", "bdk/FFFF987654"),
            *("mlk/10000001", "mlk/10000002"),  # the merchant-link keys
        }
        assert {first.entries[f"mlk/{t}"].key_type for t in ("10000001", "10000002")} == {"HMK"}
        assert first.lmk_kcv == processor.lmk_check_value
        assert {e.source for e in first.entries.values()} == {"components"}
        assert processor.counts["A4"] == 7
        assert read_key_store(config.key_store_path) == first
        assert await key_ceremony(config, hsm) == first  # restart: nothing imported again
        assert processor.counts["A4"] == 7
        rekeyed = dataclasses.replace(
            config, terminals=(config.terminals[0], dataclasses.replace(config.terminals[1], tmk=TEST_TMK_1))
        )
        again = await key_ceremony(rekeyed, hsm)
        assert again.entries["tmk/10000002"].kcv == again.entries["tmk/10000001"].kcv  # replaced …
        assert again.entries["pvk"] == first.entries["pvk"]  # … and only it
    text = config.key_store_path.read_text().upper()
    link_keys = [derive_test_link_key(t.tmk).hex().upper() for t in config.terminals]
    for clear in [t.tmk for t in config.terminals] + [config.pvk, config.imk_ac, config.bdk, *link_keys]:
        assert clear[:16] not in text and clear[16:] not in text


@pytest.mark.anyio
async def test_a_store_under_another_lmk_or_a_refusing_hsm_is_a_clear_error(tmp_path: Path) -> None:
    config = AcqsimConfig.default(data_dir=tmp_path)
    async with hsm_at(HsmProcessor.with_random_lmk(allow_clear_import=True)) as hsm:
        store = await key_ceremony(config, hsm)
    other = HsmProcessor.with_random_lmk(allow_clear_import=True)
    async with hsm_at(other) as hsm:
        with pytest.raises(CeremonyError, match=f"under LMK {store.lmk_kcv}.*{other.lmk_check_value}"):
            await key_ceremony(config, hsm)
    fresh = dataclasses.replace(config, data_dir=tmp_path / "fresh")
    async with hsm_at(HsmProcessor.with_random_lmk()) as hsm:
        with pytest.raises(CeremonyError, match="allow_clear_import = false"):
            await key_ceremony(fresh, hsm)
    assert not fresh.key_store_path.exists()


def test_acqsim_up_stops_when_the_hsm_refuses_the_ceremony(tmp_path: Path) -> None:
    """A configuration that forbids clear import and a store without the keys: ``acqsim up`` says which key
    and how to import it, and exits 1 with no service left running."""
    config_file = tmp_path / "acqsim.toml"
    config_file.write_text(f'data_dir = "{tmp_path / "data"}"\n[hsm]\nallow_clear_import = false\n')
    argv = [sys.executable, "-m", "acqsim", "up", "--ephemeral-ports", "--config", str(config_file)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=UP_TIMEOUT_S, check=False)
    assert done.returncode == 1
    assert "tmk/10000001: the HSM refuses clear components" in done.stderr
    assert "acqsim keys import --under-zmk" in done.stderr
    assert not (tmp_path / "data" / "keys" / "keystore.json").exists()
    left = [p for p in Path("/proc").glob("[0-9]*/cmdline") if str(tmp_path).encode() in _read(p)]
    assert left == []  # the HSM it started was stopped


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:  # a process that ended meanwhile
        return b""
