"""The key ceremony against a real HSM server: the TEST keys go in as components, only cryptograms come back;
a second run re-imports nothing; a changed key is replaced; a store under another LMK, or an HSM that refuses
clear components, is a clear error."""

from __future__ import annotations

import dataclasses
import functools
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

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def hsm_at(processor: HsmProcessor) -> AsyncIterator[HsmClient]:
    async with anyio.create_task_group() as tg:
        port = await tg.start(functools.partial(serve, "127.0.0.1", 0, processor=processor))
        async with await HsmClient.connect("127.0.0.1", port) as client:
            yield client
        tg.cancel_scope.cancel()


async def test_the_ceremony_loads_once_and_reuses_the_store(tmp_path: Path) -> None:
    config = AcqsimConfig.default(data_dir=tmp_path)
    processor = HsmProcessor.with_random_lmk(allow_clear_import=True)
    async with hsm_at(processor) as hsm:
        first = await key_ceremony(config, hsm)
        assert set(first.entries) == {"tmk/10000001", "tmk/10000002", "pvk"}
        assert first.lmk_kcv == processor.lmk_check_value
        assert {e.source for e in first.entries.values()} == {"components"}
        assert processor.counts["A4"] == 3
        assert read_key_store(config.key_store_path) == first
        assert await key_ceremony(config, hsm) == first  # restart: nothing imported again
        assert processor.counts["A4"] == 3
        rekeyed = dataclasses.replace(
            config, terminals=(config.terminals[0], dataclasses.replace(config.terminals[1], tmk=TEST_TMK_1))
        )
        again = await key_ceremony(rekeyed, hsm)
        assert again.entries["tmk/10000002"].kcv == again.entries["tmk/10000001"].kcv  # replaced …
        assert again.entries["pvk"] == first.entries["pvk"]  # … and only it
    text = config.key_store_path.read_text().upper()
    for clear in [t.tmk for t in config.terminals] + [config.pvk]:
        assert clear[:16] not in text and clear[16:] not in text


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
