"""``acqsim nac``: run the network access controller, or print a running one's statistics.

    acqsim nac --listen 127.0.0.1:5800 --route 0003=127.0.0.1:5900,127.0.0.1:5901 --status-port 5801
    acqsim nac --stats 127.0.0.1:5801

Without ``--route`` / ``--listen`` the configuration (``--config FILE`` or the built-in default) supplies
them. Every limit of :mod:`nac.limits` has a flag.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from acqkit.config import CONFIG_HELP, ConfigError, Endpoint, load_config
from acqkit.exitcodes import EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE
from acqkit.metrics import add_metrics_option, start_metrics
from acqkit.peerclient import PEER_RETRY_WINDOW_S
from acqkit.rules import RuleBook, RuleError
from acqkit.runner import announce, leaves, run_service
from acqkit.serving import serving_for
from nac.limits import NacLimits
from nac.routes import Member, RouteSpecError, RouteTable

if TYPE_CHECKING:
    from nac.tracing import FrameTracer


def configure(parser: argparse.ArgumentParser) -> None:
    defaults = NacLimits()
    parser.add_argument("--config", type=Path, help=CONFIG_HELP)
    parser.add_argument("--listen", metavar="HOST:PORT", help="where terminals connect (default: the configuration's)")
    parser.add_argument(
        "--route",
        action="append",
        default=[],
        metavar="DST=HOST:PORT[,HOST:PORT]",
        help="repeat per route (default: the configuration's routes)",
    )
    parser.add_argument(
        "--status-port",
        type=int,
        help="serve statistics as one JSON document on this port (default: the configuration's)",
    )
    parser.add_argument("--stats", metavar="HOST:PORT", help="print a running NAC's statistics and exit")
    parser.add_argument(
        "--sticky",
        action="store_true",
        help="keep each terminal (field 41) on one member of its route: a pool of front-ends, each with its own"
        " sessions; failover when it is down, back at a sign-on (default: round robin; on when the"
        " configuration's [frontend] instances > 1)",
    )
    parser.add_argument("--trace", type=Path, help="append a JSON-lines trace of every frame to this file")
    add_metrics_option(parser)
    parser.add_argument(
        "--rules", type=Path, help="scripted answers and faults (TOML, docs/rules.md); reloaded when it changes"
    )
    parser.add_argument(
        "--peer-wait",
        type=float,
        default=PEER_RETRY_WINDOW_S,
        metavar="S",
        help="exit 3 if a route has had no front-end connected S seconds after the start (later losses: reconnect)",
    )
    parser.add_argument(
        "--tls-dir",
        type=Path,
        help="mutual TLS to the front-ends with the certificates in DIR (`acqsim certs create`); default: plain"
        " TCP, or DATA_DIR/tls when the configuration says tls = true. Terminals always connect in plain TCP",
    )
    limits = parser.add_argument_group("limits (nac/limits.py)")
    limits.add_argument(
        "--max-frame-len", type=int, default=defaults.max_frame_len, metavar="N", help="%(default)s bytes"
    )
    limits.add_argument(
        "--max-connections", type=int, default=defaults.max_connections, metavar="N", help="terminals, %(default)s"
    )
    limits.add_argument(
        "--max-in-flight", type=int, default=defaults.max_in_flight, metavar="N", help="per terminal, %(default)s"
    )
    limits.add_argument("--idle-timeout", type=float, default=defaults.idle_timeout_s, metavar="S", help="%(default)s")
    limits.add_argument(
        "--answer-timeout", type=float, default=defaults.answer_timeout_s, metavar="S", help="%(default)s"
    )
    limits.add_argument(
        "--connect-timeout", type=float, default=defaults.connect_timeout_s, metavar="S", help="%(default)s"
    )
    limits.add_argument(
        "--send-timeout", type=float, default=defaults.send_timeout_s, metavar="S", help="per write, %(default)s"
    )
    limits.add_argument(
        "--backoff-max", type=float, default=defaults.backoff_max_s, metavar="S", help="reconnect, %(default)s"
    )
    limits.add_argument(
        "--max-stale-per-link",
        type=int,
        default=defaults.max_stale_per_link,
        metavar="N",
        help="timed-out requests before an upstream connection is recycled, %(default)s",
    )


def limits_from_args(args: argparse.Namespace) -> NacLimits:
    return NacLimits(
        max_frame_len=args.max_frame_len,
        max_connections=args.max_connections,
        max_in_flight=args.max_in_flight,
        idle_timeout_s=args.idle_timeout,
        answer_timeout_s=args.answer_timeout,
        connect_timeout_s=args.connect_timeout,
        send_timeout_s=args.send_timeout,
        backoff_max_s=max(args.backoff_max, NacLimits().backoff_min_s),
        max_stale_per_link=args.max_stale_per_link,
    )


def table_from_config(path: Path | None) -> tuple[RouteTable, Endpoint, int | None]:
    """Routes, listening endpoint and status port from ``[nac]`` of a configuration (or the default)."""
    config = load_config(path)
    groups = {
        dst.upper(): tuple(Member(host=e.host, port=e.port) for e in config.route_members(dst))
        for dst in config.nac.routes
    }
    table = RouteTable(routes={dst: dst for dst in groups}, groups=groups)
    return table, config.nac.listen, config.nac.status.port if config.nac.status else None


def _open_trace(path: Path | None) -> FrameTracer | None:
    if path is None:
        return None
    # imported by name: wire.trace is optional for the NAC, which only hands it frames
    module = importlib.import_module("wire.trace")
    tracer: FrameTracer = module.TraceWriter(path, "nac")
    return tracer


async def _print_stats(endpoint: Endpoint) -> None:
    from nac.status import fetch_stats

    print(json.dumps(await fetch_stats(endpoint.host, endpoint.port), indent=2, sort_keys=True))


def _stats(address: str) -> int:
    """``--stats HOST:PORT``: print a running NAC's statistics; exit 3 when nothing answers there."""
    try:
        endpoint = Endpoint.parse(address)
    except ConfigError as exc:
        print(f"acqsim nac: --stats: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        anyio.run(_print_stats, endpoint)
    except (OSError, TimeoutError) as exc:
        print(f"acqsim nac: no NAC status port answers at {endpoint}: {exc or 'timed out'}", file=sys.stderr)
        return EXIT_UNREACHABLE
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    if args.stats:
        return _stats(args.stats)
    try:
        table, listen, status_port = table_from_config(args.config)
        if args.route:
            table = RouteTable.parse(args.route)
        if args.listen:
            listen, status_port = Endpoint.parse(args.listen), None
        if args.status_port is not None:
            status_port = args.status_port
        limits = limits_from_args(args)
        sticky = args.sticky or load_config(args.config).frontend.instances > 1
        upstream = serving_for("nac", tls_dir=args.tls_dir, max_connections=None, config=load_config(args.config))
    except (ConfigError, RouteSpecError, ValueError, OSError, TimeoutError) as exc:
        print(f"acqsim nac: {exc}", file=sys.stderr)
        return 2

    from nac.server import NacServer, RoutesUnreachable

    try:
        trace = _open_trace(args.trace)
    except (ImportError, OSError) as exc:
        print(f"acqsim nac: --trace: {exc}", file=sys.stderr)
        return 2
    try:
        rules = RuleBook(args.rules, "nac") if args.rules else None
    except RuleError as exc:
        print(f"acqsim nac: --rules: {exc}", file=sys.stderr)
        return 2
    server = NacServer(table, limits, trace=trace, upstream_tls=upstream.client_tls, rules=rules, sticky=sticky)

    unreachable: list[RoutesUnreachable] = []

    async def main() -> None:
        try:
            async with anyio.create_task_group() as tg:
                serving = functools.partial(
                    server.serve, listen.host, listen.port, status_port=status_port, peer_wait=args.peer_wait
                )
                ports = await tg.start(serving)
                await start_metrics(tg, "nac", listen.host, args.metrics_port)
                for dst, group in sorted(table.routes.items()):
                    print(f"route {dst} → {', '.join(str(m) for m in table.groups[group])}", flush=True)
                if ports.status is not None:
                    print(f"NAC statistics on {listen.host}:{ports.status}", flush=True)
                print(upstream.summary, flush=True)
                announce("nac", listen.host, ports.listen)
        except* RoutesUnreachable as group:  # a NAC started alone, pointed at no front-end
            unreachable.extend(leaves(group, RoutesUnreachable))

    try:
        code = run_service(main)
    finally:
        if trace is not None:
            trace.close()
    if unreachable:
        print(f"acqsim nac: {unreachable[0]}", file=sys.stderr)
        return EXIT_UNREACHABLE
    return code
