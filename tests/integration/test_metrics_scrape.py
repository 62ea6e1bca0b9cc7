"""A Prometheus scrape of real services: the four services of the in-process pipeline share this process's
registry, so one /metrics endpoint shows what each of them counted for a real purchase."""

from __future__ import annotations

import functools
from pathlib import Path

import anyio
import pytest
from prometheus_client.parser import text_string_to_metric_families

from acqkit.config import AcqsimConfig
from acqkit.metrics import serve_metrics
from acqsim.pipeline import running_pipeline
from terminal.pos import PosTerminal


async def _scrape(port: int) -> dict[str, list[tuple[dict[str, str], float]]]:
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n")
        data = b""
        with anyio.fail_after(5):
            try:
                while True:
                    data += await stream.receive()
            except anyio.EndOfStream:
                pass
    body = data.split(b"\r\n\r\n", 1)[1].decode()
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def _value(samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    return sum(v for found, v in samples.get(name, []) if all(found.get(k) == x for k, x in labels.items()))


@pytest.mark.anyio
async def test_a_purchase_shows_in_every_service_metrics(tmp_path: Path, anyio_backend: str) -> None:
    config = AcqsimConfig.default(data_dir=tmp_path)
    card = config.card("6200001000000003")
    async with running_pipeline(config) as pipeline, anyio.create_task_group() as tg:
        port = await tg.start(functools.partial(serve_metrics, "127.0.0.1", 0))
        before = await _scrape(port)
        async with PosTerminal(config, "10000001", nac=pipeline.nac) as pos:
            outcome = await pos.financial("purchase", card, amount=1234, pin=card.pin)
            assert outcome is not None and outcome.approved
        after = await _scrape(port)
        tg.cancel_scope.cancel()

    def grew(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert grew("acqsim_hsm_commands_total", service="hsm", command="M8", error="00") == 1
    assert grew("acqsim_hsm_commands_total", service="hsm", command="DC", error="00") == 1
    assert grew("acqsim_transactions_total", service="ledger", mti="0200", code="00") == 1
    assert grew("acqsim_hop_seconds_count", service="ledger", hop="commit") == 1
    assert grew("acqsim_commits_total", committer="ledger") >= 1
    assert _value(after, "acqsim_in_flight", service="nac") == 0
    assert ("acqsim_queue_depth" in after) and _value(after, "acqsim_queue_depth", service="nac") == 0
