"""The runtime's /metrics endpoint: a real scrape over loopback, parsed with prometheus_client's own parser."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import anyio
import pytest
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.parser import text_string_to_metric_families

from acqkit.metrics import HOP_SECONDS, REGISTRY, TRANSACTIONS, answer, render, serve_metrics


async def _get(port: int, request: bytes) -> bytes:
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(request)
        data = b""
        with anyio.fail_after(5):
            try:
                while True:
                    data += await stream.receive()
            except anyio.EndOfStream:
                return data


@pytest.mark.anyio
async def test_a_scrape_parses_and_carries_the_counts() -> None:
    registry = CollectorRegistry()
    hits = Counter("acqsim_test_hits", "hits", ["service", "code"], registry=registry)
    hits.labels(service="nac", code="00").inc(3)
    async with anyio.create_task_group() as tg:
        port = await tg.start(functools.partial(serve_metrics, "127.0.0.1", 0, registry=registry))
        response = await _get(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        missing = await _get(port, b"GET / HTTP/1.1\r\n\r\n")
        await _get(port, b"GARBAGE\r\n\r\n")  # a bad client is answered 400 and the server keeps serving
        again = await _get(port, b"GET /metrics?x=1 HTTP/1.0\r\n\r\n")
        tg.cancel_scope.cancel()
    head, body = response.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 OK") and b"Content-Type: text/plain" in head
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    [sample] = [s for s in families["acqsim_test_hits"].samples if s.name == "acqsim_test_hits_total"]
    assert sample.labels == {"service": "nac", "code": "00"} and sample.value == 3
    assert missing.startswith(b"HTTP/1.1 404")
    assert again.startswith(b"HTTP/1.1 200")


def test_the_shared_metrics_render_in_the_text_format() -> None:
    TRANSACTIONS.labels(service="frontend", mti="0200", code="00").inc()
    HOP_SECONDS.labels(service="frontend", hop="hsm").observe(0.0004)
    families = {f.name: f for f in text_string_to_metric_families(render().decode())}
    assert any(s.labels["code"] == "00" and s.value >= 1 for s in families["acqsim_transactions"].samples)
    buckets = [s for s in families["acqsim_hop_seconds"].samples if s.name.endswith("_bucket")]
    assert any(s.labels["le"] == "0.0005" and s.value >= 1 for s in buckets)
    assert answer(b"POST /metrics HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 405")
    assert answer(b"HEAD /metrics HTTP/1.1\r\n\r\n").endswith(b"\r\n\r\n")


def test_the_grafana_dashboard_uses_only_metrics_that_exist() -> None:
    dashboard = json.loads((Path(__file__).parents[2] / "docs" / "grafana" / "acqsim-dashboard.json").read_text())
    known = {sample for metric in REGISTRY.collect() for sample in _sample_names(metric.name, metric.type)}
    used = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\bacqsim_[a-z_]+", target["expr"])
    }
    assert used and used <= known, sorted(used - known)


def _sample_names(name: str, kind: str) -> list[str]:
    if kind == "counter":
        return [f"{name}_total"]
    if kind == "histogram":
        return [f"{name}_bucket", f"{name}_sum", f"{name}_count"]
    return [name]
