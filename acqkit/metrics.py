"""Prometheus metrics, the same for every service: defined once here, served by one small HTTP endpoint.

Every metric carries a ``service`` label (hsm, ledger, frontend, nac), so services that share a process (the
in-process pipeline of ``acqsim demo`` and the tests) share one registry without clashing.

    acqsim_transactions_total{service,mti,code}      counter    answers given, by request MTI and response code
    acqsim_hop_seconds{service,hop}                  histogram  time one request spent waiting on the next hop
    acqsim_in_flight{service}                        gauge      requests received and not yet answered
    acqsim_queue_depth{service,queue}                gauge      items waiting in a named queue
    acqsim_reversals_pending{service}                gauge      store-and-forward reversals still owed
    acqsim_hsm_commands_total{service,command,error} counter    HSM commands answered, by command and error code
    acqsim_commits_total{committer}                  counter    group commits written (ledger, journal)
    acqsim_commit_size{committer}                    histogram  items per group commit
    acqsim_trace_records_dropped_total{service}      counter    trace records dropped: the trace writer fell behind

``serve_metrics`` answers ``GET /metrics`` in Prometheus' text format (any other path: 404), one request per
connection, each under ``REQUEST_TIMEOUT_S``; a client that misbehaves is dropped and the others are served.
"""

from __future__ import annotations

import argparse
import functools
import logging
from typing import Final

import anyio
import anyio.abc
from anyio.abc import SocketAttribute
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

log = logging.getLogger("acqsim.metrics")

# No ``*_created`` series: a dashboard needs none, and they would double a scrape's size.
disable_created_metrics()  # type: ignore[no-untyped-call]
#: The registry every service's metrics live in (one per process).
REGISTRY: Final = CollectorRegistry(auto_describe=True)
#: Latency buckets, seconds: a hop on loopback takes tens of microseconds to a few milliseconds; timeouts ~5 s.
LATENCY_BUCKETS: Final = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
COMMIT_SIZE_BUCKETS: Final = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)

TRANSACTIONS: Final = Counter(
    "acqsim_transactions",
    "Answers given, by request MTI and response code",
    ["service", "mti", "code"],
    registry=REGISTRY,
)
#: How many (service, MTI, response code) series of TRANSACTIONS :func:`transactions_counter` keeps looked up.
TRANSACTION_SERIES_CACHED: Final = 4096


@functools.lru_cache(maxsize=TRANSACTION_SERIES_CACHED)
def transactions_counter(service: str, mti: str, code: str) -> Counter:
    """TRANSACTIONS' series for one service, MTI and response code, looked up once per triple, not per answer
    (``labels`` takes a lock and builds a key on every call)."""
    return TRANSACTIONS.labels(service=service, mti=mti, code=code)


HOP_SECONDS: Final = Histogram(
    "acqsim_hop_seconds",
    "Time a request spent waiting on the next hop",
    ["service", "hop"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
IN_FLIGHT: Final = Gauge("acqsim_in_flight", "Requests received and not yet answered", ["service"], registry=REGISTRY)
QUEUE_DEPTH: Final = Gauge("acqsim_queue_depth", "Items waiting in a queue", ["service", "queue"], registry=REGISTRY)
REVERSALS_PENDING: Final = Gauge(
    "acqsim_reversals_pending", "Store-and-forward reversals still owed", ["service"], registry=REGISTRY
)
HSM_COMMANDS: Final = Counter(
    "acqsim_hsm_commands",
    "HSM commands answered, by command and error code",
    ["service", "command", "error"],
    registry=REGISTRY,
)
COMMITS: Final = Counter(
    "acqsim_commits",
    "Group commits written, by committer (ledger, front-end journal)",
    ["committer"],
    registry=REGISTRY,
)
COMMIT_SIZE: Final = Histogram(
    "acqsim_commit_size", "Items per group commit", ["committer"], buckets=COMMIT_SIZE_BUCKETS, registry=REGISTRY
)
TRACE_RECORDS_DROPPED: Final = Counter(
    "acqsim_trace_records_dropped",
    "Trace records dropped because the trace writer fell behind (its queue was full)",
    ["service"],
    registry=REGISTRY,
)

METRICS_PATH: Final = "/metrics"
#: ``acqsim up --metrics`` serves each service's metrics on these ports (``--ephemeral-ports``: free ones).
DEFAULT_METRICS_PORTS: Final = {"hsm": 9150, "ledger": 9151, "frontend": 9152, "nac": 9153}
#: What a service prints once its metrics endpoint listens: ``METRICS <service> <host>:<port>``.
METRICS_PREFIX: Final = "METRICS "
REQUEST_TIMEOUT_S: Final = 5.0
#: The longest request head read: a scrape's is a few hundred bytes.
MAX_REQUEST_HEAD: Final = 8192


def render(registry: CollectorRegistry = REGISTRY) -> bytes:
    """The registry in Prometheus' text exposition format."""
    return generate_latest(registry)


def _response(status: str, body: bytes, content_type: str) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


async def _read_head(stream: anyio.abc.ByteStream) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        if len(data) > MAX_REQUEST_HEAD:
            raise ValueError("request head too long")
        data += await stream.receive()
    return data


def answer(head: bytes, registry: CollectorRegistry = REGISTRY) -> bytes:
    """The HTTP response to one request head (sans-IO: the server below only moves bytes)."""
    request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = request_line.split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        return _response("400 Bad Request", b"bad request line\n", "text/plain")
    method, target = parts[0], parts[1].split("?", 1)[0]
    if target != METRICS_PATH:
        return _response("404 Not Found", b"only /metrics here\n", "text/plain")
    if method not in ("GET", "HEAD"):
        return _response("405 Method Not Allowed", b"GET /metrics\n", "text/plain")
    response = _response("200 OK", render(registry), CONTENT_TYPE_LATEST)
    return response.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n" if method == "HEAD" else response


async def serve_metrics(
    host: str,
    port: int,
    *,
    registry: CollectorRegistry = REGISTRY,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``GET /metrics`` on ``host:port`` (0: a free port, reported through ``task_status``) until cancelled."""

    async def handle(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            try:
                with anyio.fail_after(REQUEST_TIMEOUT_S):
                    head = await _read_head(stream)
                    await stream.send(answer(head, registry))
            except (TimeoutError, ValueError, anyio.EndOfStream, anyio.BrokenResourceError, OSError) as exc:
                log.debug("metrics client dropped: %s", type(exc).__name__)

    listener = await anyio.create_tcp_listener(local_host=host, local_port=port)
    async with listener:
        task_status.started(listener.extra(SocketAttribute.local_port))
        await listener.serve(handle)


def add_metrics_option(parser: argparse.ArgumentParser) -> None:
    """``--metrics-port PORT`` for a service's command line."""
    parser.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve Prometheus metrics on http://HOST:PORT/metrics (0: a free port; default: none)",
    )


async def start_metrics(tg: anyio.abc.TaskGroup, service: str, host: str, port: int | None) -> int | None:
    """Start the metrics endpoint in ``tg`` if ``port`` is given; print ``METRICS <service> <host>:<port>``."""
    if port is None:
        return None
    bound: int = await tg.start(functools.partial(serve_metrics, host, port))
    print(f"{METRICS_PREFIX}{service} {host}:{bound}", flush=True)
    return bound
